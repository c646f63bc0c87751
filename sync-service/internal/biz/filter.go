package biz

import (
	"slices"
	"strings"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

// TypeFilter is the set of user event types a connection receives. The
// zero value (and an empty list) means every type.
type TypeFilter struct {
	mask uint32 // bit i set: events.UserEventTypes[i] wanted; 0: all
}

// NewTypeFilter builds a filter from event type names. An empty list means
// every type; an unknown name is an INVALID_MESSAGE error naming it.
func NewTypeFilter(types []string) (TypeFilter, error) {
	var f TypeFilter
	for _, t := range types {
		i := slices.Index(events.UserEventTypes, t)
		if i < 0 {
			return TypeFilter{}, apperr.Newf(apperr.ReasonInvalidMessage, "unknown event type %q (known: %s)", t, strings.Join(events.UserEventTypes, ", "))
		}
		f.mask |= 1 << i
	}
	return f, nil
}

// Wants reports whether an event of type typ passes the filter. Types this
// build does not know pass only an unfiltered connection.
func (f TypeFilter) Wants(typ string) bool {
	if f.mask == 0 {
		return true
	}
	i := slices.Index(events.UserEventTypes, typ)
	return i >= 0 && f.mask&(1<<i) != 0
}

// Types lists the filter's types (nil: all).
func (f TypeFilter) Types() []string {
	if f.mask == 0 {
		return nil
	}
	var out []string
	for i, t := range events.UserEventTypes {
		if f.mask&(1<<i) != 0 {
			out = append(out, t)
		}
	}
	return out
}

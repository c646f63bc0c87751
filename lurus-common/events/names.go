// Package events is the message contract of DESIGN.md §4: stream, subject,
// consumer and header names, the message envelope, the batch body and every
// event payload. No other package spells a subject or a stream name. It
// imports only the standard library, so a use case can name an event
// without pulling in a driver; the JetStream runtime (stream creation,
// publisher, consumer runner, per-user feed) is events/natsbus.
package events

import (
	"strings"
)

// Base stream names.
const (
	StreamBilling = "LURUS_BILLING"
	StreamLogs    = "LURUS_LOGS"
	StreamEvents  = "LURUS_EVENTS"
	// StreamDead stores every message a consumer could not decode or gave up
	// on, under the subject "<stream>.dead", so nothing is silently dropped.
	StreamDead = "LURUS_DEAD"
)

// Base subjects.
const (
	SubjectBillingUsage    = "billing.usage"
	SubjectLogWrite        = "log.write"
	SubjectProviderChanged = "provider.changed" // core NATS, not stored
	SubjectKeyChanged      = "key.changed"      // core NATS, not stored
	SubjectPriceChanged    = "price.changed"    // core NATS, not stored
	subjectUserPrefix      = "events.user"
)

// Durable consumer names.
const (
	DurableBilling = "billing-service"
	DurableLogs    = "log-service"
)

// Names spells every stream and subject for one namespace. Production uses
// the empty namespace (the names above, unchanged); tests use a random one so
// concurrent runs on one server never see each other's messages. The zero
// value is the production namespace.
type Names struct {
	subj   string // "" or "ns."
	stream string // "" or "NS_"
}

// NewNames returns the names for namespace ns ("" for production). ns must
// be a valid subject token (letters, digits, '-', '_').
func NewNames(ns string) Names {
	if ns == "" {
		return Names{}
	}
	return Names{subj: ns + ".", stream: strings.ToUpper(strings.ReplaceAll(ns, "-", "_")) + "_"}
}

// Stream returns the namespaced name of a base stream name.
func (n Names) Stream(base string) string { return n.stream + base }

// Subject returns the namespaced form of a base subject.
func (n Names) Subject(base string) string { return n.subj + base }

// DeadSubject is where undecodable or abandoned messages of stream go.
func (n Names) DeadSubject(baseStream string) string { return n.Stream(baseStream) + ".dead" }

// UserSubject is the subject of a user event: events.user.<user_id>.<type>.
func (n Names) UserSubject(userID, typ string) string {
	return n.subj + subjectUserPrefix + "." + userID + "." + typ
}

// UserFilter matches every event of one user.
func (n Names) UserFilter(userID string) string {
	return n.subj + subjectUserPrefix + "." + userID + ".>"
}

// AllUsersFilter matches every user event.
func (n Names) AllUsersFilter() string { return n.subj + subjectUserPrefix + ".>" }

// ParseUserSubject splits a user-event subject into user id and event type.
func (n Names) ParseUserSubject(subject string) (userID, typ string, ok bool) {
	rest, found := strings.CutPrefix(subject, n.subj+subjectUserPrefix+".")
	if !found {
		return "", "", false
	}
	userID, typ, ok = strings.Cut(rest, ".")
	if !ok || userID == "" || typ == "" {
		return "", "", false
	}
	return userID, typ, true
}

// ValidToken reports whether s can be used as one subject token (user ids
// are): non-empty, no '.', '*', '>' or whitespace.
func ValidToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		switch {
		case c == '.', c == '*', c == '>', c <= ' ', c == 0x7f:
			return false
		}
	}
	return true
}

// Package biz is log-service's domain: what a request log record is and
// when it is valid, how a batch is written exactly once, and the rules of
// the query API (ranges, limits, who sees what, stats arithmetic). It
// declares the storage interfaces it needs; internal/data implements them
// on ClickHouse.
package biz

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

// ReasonInvalidRecord is the reason of a log record that fails Validate.
const ReasonInvalidRecord apperr.Reason = "INVALID_LOG_RECORD"

func init() { apperr.Register(ReasonInvalidRecord, apperr.KindInvalid) }

// Record is one request as the gateway logs it: the data of a log.write
// event (DESIGN.md §4), events.LogRecord, which declares its fields; the
// consumer converts with biz.Record(ev). A field added to the event must be
// added to the schema (data.insertColumns) and to the limits below.
//
// Its JSON is the event's but for upstream_format (the API family of the
// provider that served the call; it differs from APIFormat when the
// gateway translated): the event omits it when empty, the API always
// writes it, "" meaning no provider was tried or a row stored before
// request_log had the column.
type Record events.LogRecord

// MarshalJSON encodes r as the event does, with upstream_format present
// even when empty. It stays the last field, where the event puts it.
func (r Record) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(events.LogRecord(r))
	if err != nil || r.UpstreamFormat != "" {
		return b, err
	}
	return append(b[:len(b)-1], `,"upstream_format":""}`...), nil
}

// Entry is a stored Record. CreatedAt is truncated to the second (the
// column is a DateTime).
type Entry struct {
	Record
	InsertedAt time.Time `json:"inserted_at"`
}

// MarshalJSON encodes e as its Record's fields followed by inserted_at (it
// is needed because Record's MarshalJSON would otherwise be promoted and
// drop InsertedAt).
func (e Entry) MarshalJSON() ([]byte, error) {
	b, err := e.Record.MarshalJSON()
	if err != nil {
		return nil, err
	}
	at, err := json.Marshal(e.InsertedAt)
	if err != nil {
		return nil, err
	}
	b = append(b[:len(b)-1], `,"inserted_at":`...)
	return append(append(b, at...), '}'), nil
}

// Limits a Record must keep; they follow the column types of request_log.
const (
	MaxIDLen        = 128  // request_id, trace_id, user_id, key_id, provider_id
	MaxFieldLen     = 256  // model names, endpoint, error_reason and the other short strings
	MaxUserAgentLen = 1024 // user_agent
	// MaxFutureSkew is how far in the future created_at may lie (producer
	// clocks drift; a far-future row would sit on top of every newest-first
	// page).
	MaxFutureSkew = 24 * time.Hour
)

// minCreatedAt is the earliest accepted created_at (DateTime starts at 1970;
// anything this old is a bug in the producer).
var minCreatedAt = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Validate checks r against the limits of the schema; now bounds created_at.
// The error is an *apperr.Error with ReasonInvalidRecord naming the field.
func (r *Record) Validate(now time.Time) error {
	if r.RequestID == "" {
		return invalid("request_id is required")
	}
	if !validID(r.RequestID) {
		return invalid("request_id must be 1..128 printable ASCII characters without spaces")
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"trace_id", r.TraceID, MaxIDLen}, {"user_id", r.UserID, MaxIDLen}, {"key_id", r.KeyID, MaxIDLen},
		{"provider_id", r.ProviderID, MaxIDLen}, {"model", r.Model, MaxFieldLen},
		{"upstream_model", r.UpstreamModel, MaxFieldLen}, {"api_format", r.APIFormat, MaxFieldLen},
		{"endpoint", r.Endpoint, MaxFieldLen}, {"error_reason", r.ErrorReason, MaxFieldLen},
		{"usage_source", r.UsageSource, MaxFieldLen}, {"client_ip", r.ClientIP, MaxFieldLen},
		{"user_agent", r.UserAgent, MaxUserAgentLen}, {"upstream_format", r.UpstreamFormat, MaxFieldLen},
	} {
		if len(f.v) > f.max {
			return invalid(fmt.Sprintf("%s is longer than %d bytes", f.name, f.max))
		}
		if !utf8.ValidString(f.v) {
			return invalid(f.name + " is not valid UTF-8")
		}
	}
	if r.StatusCode < 0 || r.StatusCode > 999 {
		return invalid("status_code must be in 0..999")
	}
	if r.Attempts < 0 || r.Attempts > math.MaxUint16 {
		return invalid("attempts must be in 0..65535")
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"latency_ms", r.LatencyMs}, {"ttfb_ms", r.TTFBMs}} {
		if f.v < 0 || f.v > math.MaxUint32 {
			return invalid(f.name + " must be in 0..4294967295")
		}
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"prompt_tokens", r.PromptTokens}, {"completion_tokens", r.CompletionTokens}, {"cached_tokens", r.CachedTokens},
		{"cache_write_tokens", r.CacheWriteTokens}, {"reasoning_tokens", r.ReasoningTokens}} {
		if f.v < 0 {
			return invalid(f.name + " must not be negative")
		}
	}
	if r.CreatedAt.Before(minCreatedAt) {
		return invalid("created_at is required (RFC 3339) and must not be before 2000-01-01")
	}
	if r.CreatedAt.After(now.Add(MaxFutureSkew)) {
		return invalid("created_at lies more than 24h in the future")
	}
	return nil
}

// validID reports whether s can be a request id: printable ASCII, no
// spaces, at most MaxIDLen bytes.
func validID(s string) bool {
	if s == "" || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func invalid(msg string) error { return apperr.New(ReasonInvalidRecord, msg) }

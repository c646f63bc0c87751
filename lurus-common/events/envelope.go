package events

import (
	"encoding/json"
	"fmt"
	"time"
)

// Version is the envelope version this code writes.
const Version = 1

// Envelope wraps every message on every subject (DESIGN.md §4). ID is also
// the Nats-Msg-Id of a message that carries one envelope, so JetStream
// drops a republished duplicate; a batch message (see SplitBody) has an id
// of its own and its envelopes keep theirs.
type Envelope struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	OccurredAt time.Time       `json:"occurred_at"`
	UserID     string          `json:"user_id,omitempty"`
	Data       json.RawMessage `json:"data"`
	V          int             `json:"v"`
	// TraceParent is the W3C traceparent of the request behind the event,
	// set by the gateway, which batches envelopes into one message whose
	// headers cannot carry one trace context per envelope. It wins over the
	// message's traceparent header.
	TraceParent string `json:"traceparent,omitempty"`
}

// NewEnvelope marshals data into an envelope. id is the message id: the
// request id for billing.usage and log.write, eventid.New() for user events.
func NewEnvelope(id, typ, userID string, occurredAt time.Time, data any) (Envelope, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Envelope{}, fmt.Errorf("events: marshal %s: %w", typ, err)
	}
	return Envelope{ID: id, Type: typ, OccurredAt: occurredAt.UTC(), UserID: userID, Data: raw, V: Version}, nil
}

// DecodeData unmarshals the envelope's data into a T.
func DecodeData[T any](env Envelope) (T, error) {
	var v T
	if err := json.Unmarshal(env.Data, &v); err != nil {
		return v, fmt.Errorf("events: decode %s data: %w", env.Type, err)
	}
	return v, nil
}

// ParseEnvelope decodes and checks a message body.
func ParseEnvelope(body []byte) (Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return env, fmt.Errorf("events: envelope: %w", err)
	}
	if env.ID == "" || env.Type == "" {
		return env, fmt.Errorf("events: envelope without id or type")
	}
	if env.V != Version {
		return env, fmt.Errorf("events: envelope version %d not supported", env.V)
	}
	return env, nil
}

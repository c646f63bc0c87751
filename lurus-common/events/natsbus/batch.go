package natsbus

import (
	"context"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/eventid"
)

// NewBatchID returns the Nats-Msg-Id of a new batch message.
func NewBatchID() string { return events.BatchIDPrefix + eventid.New() }

// NewBatchMsg builds the message for a batch body of n envelopes of type
// typ (events.AppendBatch). Trace contexts travel inside the envelopes, not
// in headers.
func NewBatchMsg(subject, id, typ string, n int, body []byte) *nats.Msg {
	m := NewRawMsg(context.Background(), subject, id, typ, body)
	m.Header.Set(events.HeaderBatch, strconv.Itoa(n))
	return m
}

// envelopeContext returns ctx with the trace context of env, when it has
// its own (an envelope of a batch).
func envelopeContext(ctx context.Context, env events.Envelope) context.Context {
	if env.TraceParent == "" {
		return ctx
	}
	return ContextFromHeaders(ctx, nats.Header{"Traceparent": {env.TraceParent}})
}

package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
)

// A message on billing.usage or log.write carries one envelope (a JSON
// object) or a batch of them (a JSON array of envelopes). The gateway
// batches: storing a message costs JetStream about as much as the bytes
// it holds plus a fixed part per message and per acknowledgement, and at
// one message per request that fixed part was the largest cost of
// metering. Each envelope in a batch keeps its own id (the request id)
// and its own trace context (Envelope.TraceParent); consumers settle and
// dead-letter envelope by envelope and acknowledge the message once every
// envelope in it is done.

// HeaderBatch is set on a batch message: the number of envelopes in it.
const HeaderBatch = "Lurus-Batch"

// BatchIDPrefix starts the Nats-Msg-Id of a batch message, so it can never
// equal a request id (which is a ULID or a UUID).
const BatchIDPrefix = "batch-"

// NewBatchID returns the Nats-Msg-Id of a new batch message.
func NewBatchID() string { return BatchIDPrefix + NewID() }

// SplitBody returns the encoded envelopes a message body carries: the body
// itself when it is one envelope, the elements of the array when it is a
// batch. A body that is neither (not JSON, an empty array) is an error.
func SplitBody(body []byte) ([]json.RawMessage, error) {
	b := bytes.TrimLeft(body, " \t\r\n")
	if len(b) == 0 || b[0] != '[' {
		return []json.RawMessage{body}, nil
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(b, &parts); err != nil {
		return nil, fmt.Errorf("events: batch: %w", err)
	}
	if len(parts) == 0 {
		return nil, errors.New("events: empty batch")
	}
	return parts, nil
}

// AppendBatch appends the batch body holding the encoded envelopes envs.
func AppendBatch(dst []byte, envs ...[]byte) []byte {
	dst = append(dst, '[')
	for i, e := range envs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, e...)
	}
	return append(dst, ']')
}

// NewBatchMsg builds the message for a batch body of n envelopes of type
// typ. Trace contexts travel inside the envelopes, not in headers.
func NewBatchMsg(subject, id, typ string, n int, body []byte) *nats.Msg {
	m := NewRawMsg(context.Background(), subject, id, typ, body)
	m.Header.Set(HeaderBatch, strconv.Itoa(n))
	return m
}

// envelopeContext returns ctx with the trace context of env, when it has
// its own (an envelope of a batch).
func envelopeContext(ctx context.Context, env Envelope) context.Context {
	if env.TraceParent == "" {
		return ctx
	}
	return ContextFromHeaders(ctx, nats.Header{"Traceparent": {env.TraceParent}})
}

// ParseBody decodes every envelope a message body carries (tools and
// tests that read a stream directly; consumers get them one by one).
func ParseBody(body []byte) ([]Envelope, error) {
	raws, err := SplitBody(body)
	if err != nil {
		return nil, err
	}
	out := make([]Envelope, 0, len(raws))
	for _, raw := range raws {
		env, err := ParseEnvelope(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, env)
	}
	return out, nil
}

package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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

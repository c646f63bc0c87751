package natsbus

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

// NewMsg builds the NATS message for env on subject: the JSON envelope as
// body, Nats-Msg-Id = env.ID, and the W3C trace context of ctx (traceparent,
// tracestate) as headers.
func NewMsg(ctx context.Context, subject string, env events.Envelope) (*nats.Msg, error) {
	body, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("events: marshal envelope: %w", err)
	}
	return NewRawMsg(ctx, subject, env.ID, env.Type, body), nil
}

// NewRawMsg is NewMsg for an envelope already encoded as body (the gateway's
// outbox stores encoded bodies and replays them with this).
func NewRawMsg(ctx context.Context, subject, id, typ string, body []byte) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = body
	m.Header.Set(jetstream.MsgIDHeader, id)
	m.Header.Set(events.HeaderType, typ)
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(http.Header(m.Header)))
	return m
}

// ContextFromHeaders returns ctx carrying the remote trace context found in
// a message's headers.
func ContextFromHeaders(ctx context.Context, h nats.Header) context.Context {
	if h == nil {
		return ctx
	}
	return otel.GetTextMapPropagator().Extract(ctx, propagation.HeaderCarrier(http.Header(h)))
}

// Publisher publishes envelopes to JetStream and waits for the stream's
// acknowledgement, so a nil error means the message is stored (or was a
// duplicate of one stored).
type Publisher struct {
	js jetstream.JetStream
}

// NewPublisher returns a Publisher on js.
func NewPublisher(js jetstream.JetStream) *Publisher { return &Publisher{js: js} }

// Publish stores env on subject. Republishing an envelope with the same id
// inside the stream's duplicate window is a no-op.
func (p *Publisher) Publish(ctx context.Context, subject string, env events.Envelope) (*jetstream.PubAck, error) {
	m, err := NewMsg(ctx, subject, env)
	if err != nil {
		return nil, err
	}
	ack, err := p.js.PublishMsg(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("events: publish %s: %w", subject, err)
	}
	return ack, nil
}

// PublishCore sends a core NATS (not stored) notification such as
// provider.changed or key.changed.
func PublishCore(nc *nats.Conn, subject string, body any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("events: marshal %s: %w", subject, err)
	}
	if err := nc.Publish(subject, raw); err != nil {
		return fmt.Errorf("events: publish %s: %w", subject, err)
	}
	return nil
}

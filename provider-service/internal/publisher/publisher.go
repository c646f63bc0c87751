// Package publisher announces provider changes on core NATS
// (provider.changed), so gateways refresh their snapshot at once instead of
// at their next periodic refresh.
package publisher

import (
	"context"

	"github.com/nats-io/nats.go"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/biz"
)

// Publisher sends events.ProviderChanged on Names.Subject(provider.changed).
type Publisher struct {
	nc      *nats.Conn
	subject string
}

var _ biz.Changed = (*Publisher)(nil)

// New returns a publisher on nc in the namespace of names.
func New(nc *nats.Conn, names events.Names) *Publisher {
	return &Publisher{nc: nc, subject: names.Subject(events.SubjectProviderChanged)}
}

// ProviderChanged implements biz.Changed. Core NATS is fire-and-forget: a
// gateway that misses the message catches up at its periodic refresh.
func (p *Publisher) ProviderChanged(_ context.Context, version int64, providerID string) error {
	return natsbus.PublishCore(p.nc, p.subject, events.ProviderChanged{Version: version, ProviderID: providerID})
}

// Package publisher does what follows a commit: it writes the admission
// mirror in Redis (releasing settled reservations), publishes user events
// from the outbox to JetStream and deletes them, sends the core-NATS
// notifications key.changed and price.changed, and sweeps the outbox for
// events a crash left behind.
package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/metrics"
	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
	"github.com/lurus-switch/lurus-switch/lurus-common/admission/redisstore"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
)

// Outbox is the stored side of the outbox.
type Outbox interface {
	DeleteOutbox(ctx context.Context, rowIDs []string) error
	PendingOutbox(ctx context.Context, minAge time.Duration, limit int) (rowIDs []string, evs []biz.OutboxEvent, err error)
}

// Publisher propagates committed changes.
type Publisher struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	names  events.Names
	adm    *redisstore.Store
	outbox Outbox
	m      *metrics.Metrics
	log    *slog.Logger
}

// New returns a Publisher.
func New(nc *nats.Conn, js jetstream.JetStream, names events.Names, adm *redisstore.Store, outbox Outbox, m *metrics.Metrics, log *slog.Logger) *Publisher {
	return &Publisher{nc: nc, js: js, names: names, adm: adm, outbox: outbox, m: m, log: log}
}

// Propagate does the after-commit work of eff: mirror writes and releases
// (one pipelined round trip), then the events (published in order and
// awaited, then deleted from the outbox), then notifications. Every step is
// attempted; the joined errors are returned. A failed event publish leaves
// the rows for the sweeper.
func (p *Publisher) Propagate(ctx context.Context, eff biz.Effects) error {
	var errs []error
	if err := p.ApplyMirrors(ctx, eff.Mirrors); err != nil {
		errs = append(errs, err)
	}
	if err := p.PublishEvents(ctx, eff.Events, eff.OutboxRows); err != nil {
		errs = append(errs, err)
	}
	for _, kc := range eff.KeyChanges {
		if err := p.core(events.SubjectKeyChanged, kc); err != nil {
			errs = append(errs, err)
		}
	}
	if eff.PriceVersion > 0 {
		if err := p.core(events.SubjectPriceChanged, events.PriceChanged{Version: eff.PriceVersion}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (p *Publisher) core(base string, body any) error {
	if err := natsbus.PublishCore(p.nc, p.names.Subject(base), body); err != nil {
		return err
	}
	p.m.EventsPublished.WithLabelValues(base).Inc()
	return nil
}

// ApplyMirrors writes mirror states into Redis and releases their
// reservations, in one pipelined round trip.
func (p *Publisher) ApplyMirrors(ctx context.Context, ms []biz.Mirror) error {
	if len(ms) == 0 {
		return nil
	}
	ups := make([]admission.Update, len(ms))
	for i, m := range ms {
		ups[i] = admission.Update{ReleaseIDs: m.ReleaseIDs, Parts: m.Parts, Account: admission.Account{UserID: m.UserID,
			BalanceMicros: m.BalanceMicros, CreditMicros: m.CreditMicros, QuotaLimitTokens: m.QuotaLimitTokens,
			QuotaUsedTokens: m.QuotaUsedTokens, Active: m.Active, Version: m.Version, KeySpentMicros: m.KeySpentMicros}}
	}
	return p.adm.ApplyBatch(ctx, ups)
}

// PublishEvents publishes evs to JetStream asynchronously, in order, waits
// for every acknowledgement and then deletes the outbox rows holding them.
// The Nats-Msg-Id is the event id, so publishing an event twice stores it
// once.
func (p *Publisher) PublishEvents(ctx context.Context, evs []biz.OutboxEvent, rowIDs []string) error {
	futs := make([]jetstream.PubAckFuture, 0, len(evs))
	for _, e := range evs {
		msg := natsbus.NewRawMsg(ctx, p.names.UserSubject(e.UserID, e.Type), e.ID, e.Type, e.Envelope)
		f, err := p.js.PublishMsgAsync(msg)
		if err != nil {
			return fmt.Errorf("publisher: publish %s: %w", e.Type, err)
		}
		futs = append(futs, f)
	}
	for i, f := range futs {
		select {
		case <-f.Ok():
			p.count(evs[i].Type)
		case err := <-f.Err():
			return fmt.Errorf("publisher: publish %s: %w", evs[i].Type, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return p.outbox.DeleteOutbox(ctx, rowIDs)
}

func (p *Publisher) count(typ string) {
	p.m.EventsPublished.WithLabelValues(typ).Inc()
	switch typ {
	case events.TypeQuotaUpdated:
		p.m.QuotaUpdates.Inc()
	case events.TypeQuotaLow, events.TypeQuotaExhausted:
		p.m.LowBalanceAlerts.WithLabelValues(typ).Inc()
	}
}

// Sweep publishes, until ctx ends, every interval, the outbox rows older
// than minAge: events whose publish after commit never happened (crash,
// NATS down).
func (p *Publisher) Sweep(ctx context.Context, interval, minAge time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for {
			n, err := p.SweepOnce(ctx, minAge, 100)
			if err != nil {
				if ctx.Err() == nil {
					p.log.Warn("outbox sweep failed", "err", err)
				}
				break
			}
			if n < 100 {
				break
			}
		}
	}
}

// SweepOnce publishes the events of up to limit pending outbox rows and
// reports how many rows.
func (p *Publisher) SweepOnce(ctx context.Context, minAge time.Duration, limit int) (int, error) {
	rows, evs, err := p.outbox.PendingOutbox(ctx, minAge, limit)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	if err := p.PublishEvents(ctx, evs, rows); err != nil {
		return 0, err
	}
	p.log.Info("outbox: published events left behind", "rows", len(rows), "events", len(evs))
	return len(rows), nil
}

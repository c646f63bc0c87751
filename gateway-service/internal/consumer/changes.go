// Package consumer keeps the gateway's in-process caches current: it
// subscribes to the core-NATS notifications provider.changed, key.changed
// and price.changed, and polls provider-service and billing-service every
// refresh interval as a backstop (a missed notification heals within one
// interval). A fetch that fails keeps the data already loaded.
package consumer

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/pricing"
)

// SnapshotSource fetches the provider snapshot.
type SnapshotSource interface {
	Snapshot(ctx context.Context) (biz.Snapshot, error)
}

// PriceSource fetches the price table.
type PriceSource interface {
	Prices(ctx context.Context) (*pricing.Table, error)
}

// Changes is the cache keeper.
type Changes struct {
	NC         *nats.Conn
	Names      events.Names
	Router     *biz.Router
	Prices     *biz.PriceBook
	Keys       *biz.KeyCache
	Leases     *biz.Leases // returned on key.changed (nil: none)
	Snapshots  SnapshotSource
	PriceSrc   PriceSource
	Providers  time.Duration // polling interval of the snapshot
	PriceEvery time.Duration
	Timeout    time.Duration
	Log        *slog.Logger

	snapLoaded  atomic.Bool
	priceLoaded atomic.Bool
	snapKick    chan struct{}
	priceKick   chan struct{}
	subs        []*nats.Subscription
}

// Start subscribes, loads both caches once (not failing when a service is
// down: the gateway starts anyway and answers 503 until data arrives) and
// starts the refresh loops, which end with ctx.
func (c *Changes) Start(ctx context.Context) error {
	c.snapKick = make(chan struct{}, 1)
	c.priceKick = make(chan struct{}, 1)
	kick := func(ch chan struct{}) nats.MsgHandler {
		return func(*nats.Msg) {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	for _, s := range []struct {
		subject string
		h       nats.MsgHandler
	}{
		{c.Names.Subject(events.SubjectProviderChanged), kick(c.snapKick)},
		{c.Names.Subject(events.SubjectPriceChanged), kick(c.priceKick)},
		{c.Names.Subject(events.SubjectKeyChanged), c.onKeyChanged},
	} {
		sub, err := c.NC.Subscribe(s.subject, s.h)
		if err != nil {
			return err
		}
		c.subs = append(c.subs, sub)
	}
	c.refreshSnapshot(ctx)
	c.refreshPrices(ctx)
	go c.loop(ctx, c.snapKick, c.Providers, c.refreshSnapshot)
	go c.loop(ctx, c.priceKick, c.PriceEvery, c.refreshPrices)
	return nil
}

// Stop unsubscribes.
func (c *Changes) Stop() {
	for _, s := range c.subs {
		_ = s.Unsubscribe()
	}
}

// Ready reports whether both caches were loaded at least once.
func (c *Changes) Ready() (snapshot, prices bool) { return c.snapLoaded.Load(), c.priceLoaded.Load() }

func (c *Changes) onKeyChanged(m *nats.Msg) {
	var kc events.KeyChanged
	if err := json.Unmarshal(m.Data, &kc); err != nil {
		c.Log.Warn("key.changed: undecodable", "err", err)
		return
	}
	c.Keys.Evict(kc.KeyID, kc.UserID)
	if c.Leases != nil {
		go c.Leases.Forget(kc.KeyID, kc.UserID) // Redis round trips: off the NATS callback
	}
}

func (c *Changes) loop(ctx context.Context, kick <-chan struct{}, every time.Duration, f func(context.Context)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
		f(ctx)
	}
}

func (c *Changes) refreshSnapshot(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	s, err := c.Snapshots.Snapshot(ctx)
	if err != nil {
		c.Log.Warn("provider snapshot refresh failed; keeping the current one", "err", err)
		return
	}
	if c.snapLoaded.Load() && s.Version == c.Router.Snapshot().Version && s.Version != 0 {
		return
	}
	c.Router.Load(s)
	c.snapLoaded.Store(true)
	c.Log.Info("provider snapshot loaded", "version", s.Version, "providers", len(s.Providers))
}

func (c *Changes) refreshPrices(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	t, err := c.PriceSrc.Prices(ctx)
	if err != nil {
		c.Log.Warn("price refresh failed; keeping the current table", "err", err)
		return
	}
	c.Prices.Load(t)
	c.priceLoaded.Store(true)
}

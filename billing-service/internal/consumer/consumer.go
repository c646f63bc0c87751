// Package consumer settles billing.usage: a durable JetStream consumer
// (LURUS_BILLING, durable billing-service) hands batches to Handler, which
// records and bills them in one PostgreSQL transaction, propagates the
// result (mirror, reservations, events) and only then lets the runner
// AckSync.
package consumer

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/metrics"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
)

// Settler records and bills a batch in one transaction.
type Settler interface {
	Settle(ctx context.Context, us []events.Usage, pricer biz.Pricer) (biz.SettleResult, error)
}

// Propagator does the after-commit work.
type Propagator interface {
	Propagate(ctx context.Context, eff biz.Effects) error
}

// settleTimeout bounds one batch (transaction and propagation).
const settleTimeout = 30 * time.Second

// Handler is the batch handler of the settlement consumer.
type Handler struct {
	settler Settler
	prices  *biz.PriceBook
	prop    Propagator
	m       *metrics.Metrics
	log     *slog.Logger
}

// NewHandler returns a Handler.
func NewHandler(s Settler, prices *biz.PriceBook, prop Propagator, m *metrics.Metrics, log *slog.Logger) *Handler {
	return &Handler{settler: s, prices: prices, prop: prop, m: m, log: log}
}

// Handle settles ds. It returns one error per delivery: nil (ack),
// natsbus.Permanent (dead-letter: undecodable, unknown user, no price,
// usage over the per-request ceilings or out of range), or
// a transient error (nak with backoff; the redelivery finds the committed
// work done and only repeats the after-commit steps).
func (h *Handler) Handle(ctx context.Context, ds []natsbus.Delivery) []error {
	start := time.Now()
	defer func() { h.m.SettleDuration.Observe(time.Since(start).Seconds()) }()
	// A batch in flight finishes even when shutdown starts: its commit and
	// propagation are not cut in half (both are safe to repeat anyway).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	errs := make([]error, len(ds))
	us := make([]events.Usage, 0, len(ds))
	idx := make([]int, 0, len(ds))
	for i, d := range ds {
		if d.Env.Type != events.TypeBillingUsage {
			errs[i] = h.fail("invalid", errors.New("not a billing.usage message: "+d.Env.Type))
			continue
		}
		u, err := events.DecodeData[events.Usage](d.Env)
		if err != nil {
			errs[i] = h.fail("invalid", err)
			continue
		}
		us = append(us, u)
		idx = append(idx, i)
	}
	if len(us) == 0 {
		return errs
	}
	res, err := h.settle(ctx, us)
	if err == nil {
		err = h.prop.Propagate(ctx, res.Effects)
		if err != nil {
			h.log.Warn("settled batch not fully propagated; redelivery will repeat it", "err", err)
		}
	}
	if err != nil {
		for _, i := range idx {
			errs[i] = err
		}
		h.m.SettlementFailures.WithLabelValues("transient").Add(float64(len(idx)))
		return errs
	}
	for j, e := range res.Errs {
		switch {
		case e == nil:
		case errors.Is(e, biz.ErrTokensOverCeiling), errors.Is(e, biz.ErrCostOverCeiling), biz.IsOverflow(e):
			errs[idx[j]] = h.reject(e, us[j])
		default:
			errs[idx[j]] = h.fail(reasonOf(e), e)
		}
	}
	h.observe(res.Recorded)
	return errs
}

// settle settles us in one transaction. When that is refused because a sum
// would leave its range (found by PostgreSQL, or by a check the per-request
// ceilings should have made unreachable), retrying the batch would fail
// forever: each usage is then settled alone, and the ones still refused
// carry the refusal in their own result, to be dead-lettered.
func (h *Handler) settle(ctx context.Context, us []events.Usage) (biz.SettleResult, error) {
	res, err := h.settler.Settle(ctx, us, h.prices.Table())
	if !biz.IsOverflow(err) {
		return res, err
	}
	h.log.Error("settlement batch refused as out of range; settling its usages one by one", "usages", len(us), "err", err)
	all := biz.SettleResult{Errs: make([]error, len(us))}
	for i, u := range us {
		one, err := h.settler.Settle(ctx, []events.Usage{u}, h.prices.Table())
		switch {
		case biz.IsOverflow(err):
			all.Errs[i] = err
			continue
		case err != nil:
			return biz.SettleResult{}, err
		}
		all.Errs[i] = one.Errs[0]
		all.Recorded = append(all.Recorded, one.Recorded...)
		all.Effects.Merge(one.Effects)
	}
	return all, nil
}

// reject dead-letters a usage the upstream reported absurdly (more tokens
// or cost than one request may have) instead of settling it; an alert
// fires on billing_usage_rejected_total so an operator looks at the
// provider and, once understood, replays or drops the dead letter.
func (h *Handler) reject(err error, u events.Usage) error {
	reason := "overflow"
	switch {
	case errors.Is(err, biz.ErrTokensOverCeiling):
		reason = "tokens"
	case errors.Is(err, biz.ErrCostOverCeiling):
		reason = "cost"
	}
	h.m.UsageRejected.WithLabelValues(reason).Inc()
	h.log.Error("absurd usage dead-lettered, not settled", "reason", reason, "err", err, "request_id", u.RequestID,
		"user_id", u.UserID, "provider_id", u.ProviderID, "model", u.Model, "upstream_model", u.UpstreamModel,
		"prompt_tokens", u.PromptTokens, "completion_tokens", u.CompletionTokens)
	return natsbus.Permanent(err)
}

func (h *Handler) fail(reason string, err error) error {
	h.m.SettlementFailures.WithLabelValues(reason).Inc()
	return natsbus.Permanent(err)
}

func reasonOf(err error) string {
	switch {
	case errors.Is(err, biz.ErrNoPrice):
		return "no_price"
	case errors.Is(err, biz.ErrUnknownUser):
		return "unknown_user"
	default:
		return "invalid"
	}
}

func (h *Handler) observe(rs []biz.UsageRecord) {
	for _, r := range rs {
		h.m.UsageRecords.WithLabelValues(r.Status).Inc()
		for typ, n := range map[string]int64{"prompt": r.PromptTokens, "completion": r.CompletionTokens,
			"cached": r.CachedTokens, "cache_write": r.CacheWriteTokens, "reasoning": r.ReasoningTokens} {
			if n > 0 {
				h.m.TokensProcessed.WithLabelValues(typ).Add(float64(n))
			}
		}
		if r.CostMicros > 0 {
			h.m.CostUSD.Add(float64(r.CostMicros) / 1e6)
		}
	}
}

// Config configures the runner.
type Config struct {
	Names       events.Names
	BatchSize   int
	Linger      time.Duration
	AckWait     time.Duration
	Backoff     []time.Duration
	LagInterval time.Duration
	// Workers is how many batches are settled at once (1). More overlap one
	// batch's database work with another's acks; users are locked in id
	// order so batches never deadlock, but two batches touching one user
	// may publish that user's events out of commit order.
	Workers int
	// BeforeAck is the crash-simulation hook of natsbus.ConsumerConfig
	// (tests only).
	BeforeAck func(natsbus.Delivery) bool
}

// Runner runs the durable consumer with a Handler.
type Runner struct {
	cons *natsbus.Consumer
	h    *Handler
	cfg  Config
	m    *metrics.Metrics
	log  *slog.Logger
}

// NewRunner creates (or resumes) the durable consumer.
func NewRunner(ctx context.Context, js jetstream.JetStream, cfg Config, h *Handler, m *metrics.Metrics, log *slog.Logger) (*Runner, error) {
	cons, err := natsbus.NewConsumer(ctx, js, natsbus.ConsumerConfig{
		Stream:        cfg.Names.Stream(events.StreamBilling),
		Durable:       events.DurableBilling,
		FilterSubject: cfg.Names.Subject(events.SubjectBillingUsage),
		DeadSubject:   cfg.Names.DeadSubject(events.StreamBilling),
		BatchSize:     cfg.BatchSize,
		Linger:        cfg.Linger,
		AckWait:       cfg.AckWait,
		Backoff:       cfg.Backoff,
		BeforeAck:     cfg.BeforeAck,
		Logger:        log,
	})
	if err != nil {
		return nil, err
	}
	return &Runner{cons: cons, h: h, cfg: cfg, m: m, log: log}, nil
}

// Lag is how many billing.usage messages are not yet acked.
func (r *Runner) Lag(ctx context.Context) (uint64, error) { return r.cons.Lag(ctx) }

// Run consumes until ctx ends; the lag gauge is refreshed meanwhile.
func (r *Runner) Run(ctx context.Context) error {
	go r.watchLag(ctx)
	n := max(1, r.cfg.Workers)
	errc := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() { errc <- r.cons.RunBatch(ctx, r.h.Handle) }()
	}
	var first error
	for i := 0; i < n; i++ {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (r *Runner) watchLag(ctx context.Context) {
	every := r.cfg.LagInterval
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if lag, err := r.cons.Lag(ctx); err == nil {
				r.m.ConsumerLag.Set(float64(lag))
			}
		}
	}
}

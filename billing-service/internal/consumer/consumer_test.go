package consumer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/consumer"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/metrics"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

// fakeSettler answers each usage with the error its request id is mapped
// to (nil: settled, recorded at cost 1, with a mirror releasing it). A
// batch holding a request of batchErr fails as a whole with that error.
type fakeSettler struct {
	mu       sync.Mutex
	errs     map[string]error
	batchErr map[string]error
	batches  [][]string // request ids of every call
}

func (f *fakeSettler) Settle(_ context.Context, us []events.Usage, _ biz.Pricer) (biz.SettleResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, len(us))
	for i, u := range us {
		ids[i] = u.RequestID
	}
	f.batches = append(f.batches, ids)
	for _, u := range us {
		if err := f.batchErr[u.RequestID]; err != nil && (len(us) > 1 || !errors.Is(err, errOnlyInBatch)) {
			return biz.SettleResult{}, err
		}
	}
	res := biz.SettleResult{Errs: make([]error, len(us))}
	for i, u := range us {
		if res.Errs[i] = f.errs[u.RequestID]; res.Errs[i] == nil {
			res.Recorded = append(res.Recorded, biz.UsageRecord{Usage: u, CostMicros: 1})
			res.Effects.Mirrors = append(res.Effects.Mirrors, biz.Mirror{UserID: u.UserID, ReleaseIDs: []string{u.RequestID}})
		}
	}
	return res, nil
}

func (f *fakeSettler) seen() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.batches)
}

// errOnlyInBatch marks a batchErr that a usage settled alone does not
// meet (a sum only the whole batch takes out of range).
var errOnlyInBatch = errors.New("only in a batch")

type fakeProp struct {
	err   error
	calls []biz.Effects
}

func (p *fakeProp) Propagate(_ context.Context, eff biz.Effects) error {
	p.calls = append(p.calls, eff)
	return p.err
}

type fixture struct {
	settler *fakeSettler
	prop    *fakeProp
	m       *metrics.Metrics
	h       *consumer.Handler
}

func newFixture() *fixture {
	f := &fixture{settler: &fakeSettler{errs: map[string]error{}, batchErr: map[string]error{}}, prop: &fakeProp{},
		m: metrics.New(prometheus.NewRegistry())}
	book := biz.NewPriceBook(nil, nil)
	f.h = consumer.NewHandler(f.settler, book, f.prop, f.m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return f
}

func usage(req string) events.Usage {
	return events.Usage{RequestID: req, UserID: "usr_1", Model: "gpt-test", PromptTokens: 10, CompletionTokens: 5,
		Status: events.StatusOK, ReservationID: req}
}

func delivery(t *testing.T, u events.Usage) natsbus.Delivery {
	t.Helper()
	env, err := events.NewEnvelope(u.RequestID, events.TypeBillingUsage, u.UserID, time.Now(), u)
	if err != nil {
		t.Fatal(err)
	}
	return natsbus.Delivery{Ctx: context.Background(), Env: env}
}

func mirrorsReleased(effs []biz.Effects) []string {
	var out []string
	for _, e := range effs {
		for _, m := range e.Mirrors {
			out = append(out, m.ReleaseIDs...)
		}
	}
	return out
}

// TestHandleOutcomes: each delivery gets its own outcome: acked when
// settled, dead-lettered (Permanent) when it cannot be settled, with the
// failure or rejection counted by reason.
func TestHandleOutcomes(t *testing.T) {
	f := newFixture()
	f.settler.errs["req-noprice"] = biz.ErrNoPrice
	f.settler.errs["req-ghost"] = biz.ErrUnknownUser
	f.settler.errs["req-tokens"] = fmt.Errorf("%w: too many", biz.ErrTokensOverCeiling)
	f.settler.errs["req-cost"] = biz.ErrCostOverCeiling
	f.settler.errs["req-range"] = biz.ErrOverflow

	wrongType := delivery(t, usage("req-type"))
	wrongType.Env.Type = events.TypeBalanceChanged
	garbled := delivery(t, usage("req-garbled"))
	garbled.Env.Data = json.RawMessage(`"not a usage"`)
	ds := []natsbus.Delivery{delivery(t, usage("req-ok")), wrongType, garbled}
	for _, id := range []string{"req-noprice", "req-ghost", "req-tokens", "req-cost", "req-range"} {
		ds = append(ds, delivery(t, usage(id)))
	}
	errs := f.h.Handle(context.Background(), ds)

	if errs[0] != nil {
		t.Errorf("settled usage: %v", errs[0])
	}
	for i, err := range errs[1:] {
		if !natsbus.IsPermanent(err) {
			t.Errorf("delivery %d (%s): %v, want a permanent error", i+1, ds[i+1].Env.ID, err)
		}
	}
	if got := f.settler.seen(); len(got) != 1 || len(got[0]) != 6 {
		t.Errorf("settled batches %v, want the 6 decodable usages in one", got)
	}
	for reason, want := range map[string]float64{"invalid": 2, "no_price": 1, "unknown_user": 1, "transient": 0} {
		if got := testutil.ToFloat64(f.m.SettlementFailures.WithLabelValues(reason)); got != want {
			t.Errorf("settlement failures %q = %v, want %v", reason, got, want)
		}
	}
	for reason, want := range map[string]float64{"tokens": 1, "cost": 1, "overflow": 1} {
		if got := testutil.ToFloat64(f.m.UsageRejected.WithLabelValues(reason)); got != want {
			t.Errorf("usage rejected %q = %v, want %v", reason, got, want)
		}
	}
	if len(f.prop.calls) != 1 || !slices.Equal(mirrorsReleased(f.prop.calls), []string{"req-ok"}) {
		t.Errorf("propagated %+v", f.prop.calls)
	}
	if got := testutil.ToFloat64(f.m.CostUSD); got != 1e-6 {
		t.Errorf("cost counted %v", got)
	}
}

// TestHandleTransientFailures: a failed transaction or a failed
// propagation retries the whole batch (no delivery is permanent).
func TestHandleTransientFailures(t *testing.T) {
	down := errors.New("database down")
	for _, tc := range []struct {
		name      string
		settleErr error
		propErr   error
	}{
		{"transaction fails", down, nil},
		{"propagation fails", nil, down},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture()
			f.prop.err = tc.propErr
			if tc.settleErr != nil {
				f.settler.batchErr["req-2"] = tc.settleErr
			}
			errs := f.h.Handle(context.Background(), []natsbus.Delivery{delivery(t, usage("req-1")), delivery(t, usage("req-2"))})
			for i, err := range errs {
				if !errors.Is(err, down) || natsbus.IsPermanent(err) {
					t.Errorf("delivery %d: %v, want the transient error", i, err)
				}
			}
			if got := testutil.ToFloat64(f.m.SettlementFailures.WithLabelValues("transient")); got != 2 {
				t.Errorf("transient failures %v, want 2", got)
			}
			if wantProp := tc.settleErr == nil; (len(f.prop.calls) == 1) != wantProp {
				t.Errorf("propagations %d", len(f.prop.calls))
			}
		})
	}
}

// TestHandleOutOfRangeBatch: a batch refused as out of range is settled
// usage by usage; the ones still refused alone are dead-lettered, the
// others settled and propagated together.
func TestHandleOutOfRangeBatch(t *testing.T) {
	f := newFixture()
	f.settler.batchErr["req-wrap"] = biz.ErrOverflow
	f.settler.batchErr["req-b"] = fmt.Errorf("%w: %w", errOnlyInBatch, biz.ErrOverflow)
	errs := f.h.Handle(context.Background(), []natsbus.Delivery{
		delivery(t, usage("req-a")), delivery(t, usage("req-wrap")), delivery(t, usage("req-b"))})

	if errs[0] != nil || errs[2] != nil || !natsbus.IsPermanent(errs[1]) || !biz.IsOverflow(errs[1]) {
		t.Fatalf("errs %v, want [nil overflow nil]", errs)
	}
	want := [][]string{{"req-a", "req-wrap", "req-b"}, {"req-a"}, {"req-wrap"}, {"req-b"}}
	if got := f.settler.seen(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("settle calls %v, want %v", got, want)
	}
	if len(f.prop.calls) != 1 || !slices.Equal(mirrorsReleased(f.prop.calls), []string{"req-a", "req-b"}) {
		t.Errorf("propagated %+v", f.prop.calls)
	}
	if got := testutil.ToFloat64(f.m.UsageRejected.WithLabelValues("overflow")); got != 1 {
		t.Errorf("overflow rejections %v", got)
	}
}

// TestRunnerOnJetStream runs the durable consumer on a real NATS
// namespace: published usages reach the handler, a permanent refusal
// lands on the dead subject with its reason, and the lag drains to 0.
func TestRunnerOnJetStream(t *testing.T) {
	ne := testenv.NATS(t)
	f := newFixture()
	f.settler.errs["req-ghost"] = biz.ErrUnknownUser
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := consumer.Config{Names: ne.Names, BatchSize: 10, Linger: 10 * time.Millisecond, AckWait: 5 * time.Second,
		Backoff: []time.Duration{100 * time.Millisecond}, LagInterval: 50 * time.Millisecond}
	r, err := consumer.NewRunner(ctx, ne.JS, cfg, f.h, f.m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	pub := natsbus.NewPublisher(ne.JS)
	for _, id := range []string{"req-1", "req-ghost", "req-2"} {
		if _, err := pub.Publish(ctx, ne.Names.Subject(events.SubjectBillingUsage), delivery(t, usage(id)).Env); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	deadline := time.Now().Add(15 * time.Second) // a functional bound, not a timing assertion
	for {
		lag, err := r.Lag(ctx)
		if err == nil && lag == 0 && len(f.settler.seen()) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag %d (%v) after 15 s", lag, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("run: %v", err)
	}

	var settled []string
	for _, b := range f.settler.seen() {
		settled = append(settled, b...)
	}
	slices.Sort(settled)
	if !slices.Equal(settled, []string{"req-1", "req-2", "req-ghost"}) {
		t.Errorf("handled %v", settled)
	}
	cons, err := ne.JS.OrderedConsumer(context.Background(), ne.Names.Stream(events.StreamDead),
		jetstream.OrderedConsumerConfig{FilterSubjects: []string{ne.Names.DeadSubject(events.StreamBilling)}})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	env, err := events.ParseEnvelope(msg.Data())
	if err != nil || env.ID != "req-ghost" || msg.Headers().Get(events.HeaderDeadReason) != biz.ErrUnknownUser.Error() {
		t.Errorf("dead letter %s (%v), reason %q", msg.Data(), err, msg.Headers().Get(events.HeaderDeadReason))
	}
	if info, err := cons.Info(context.Background()); err != nil || info.NumPending != 0 {
		t.Errorf("more dead letters than one: %+v %v", info, err)
	}
}

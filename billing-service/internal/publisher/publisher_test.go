package publisher_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/metrics"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/publisher"
	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
	admstore "github.com/lurus-switch/lurus-switch/lurus-common/admission/redisstore"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/eventid"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

// memOutbox is the stored side of the outbox in memory.
type memOutbox struct {
	mu      sync.Mutex
	pending map[string][]biz.OutboxEvent // by row id
	order   []string
	deleted []string
}

func (o *memOutbox) DeleteOutbox(_ context.Context, ids []string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.deleted = append(o.deleted, ids...)
	for _, id := range ids {
		delete(o.pending, id)
	}
	return nil
}

func (o *memOutbox) PendingOutbox(_ context.Context, _ time.Duration, limit int) ([]string, []biz.OutboxEvent, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var ids []string
	var evs []biz.OutboxEvent
	for _, id := range o.order {
		if e, ok := o.pending[id]; ok && len(ids) < limit {
			ids = append(ids, id)
			evs = append(evs, e...)
		}
	}
	return ids, evs, nil
}

type fixture struct {
	ne     testenv.NATSEnv
	adm    *admstore.Store
	outbox *memOutbox
	pub    *publisher.Publisher
}

func newFixture(t *testing.T) fixture {
	ne, re := testenv.NATS(t), testenv.Redis(t)
	f := fixture{ne: ne, adm: admstore.New(re.Client, re.Prefix), outbox: &memOutbox{pending: map[string][]biz.OutboxEvent{}}}
	f.pub = publisher.New(ne.Conn, ne.JS, ne.Names, f.adm, f.outbox, metrics.New(prometheus.NewRegistry()),
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	return f
}

// event is a stored user event as the outbox holds it.
func event(t *testing.T, userID, typ string, data any) biz.OutboxEvent {
	t.Helper()
	id := eventid.New()
	env, err := events.NewEnvelope(id, typ, userID, time.Now(), data)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return biz.OutboxEvent{ID: id, UserID: userID, Type: typ, Envelope: raw}
}

// stored reads a user's events from the stream, in order.
func (f fixture) stored(t *testing.T, userID string) []jetstream.Msg {
	t.Helper()
	ctx := context.Background()
	cons, err := f.ne.JS.OrderedConsumer(ctx, f.ne.Names.Stream(events.StreamEvents),
		jetstream.OrderedConsumerConfig{FilterSubjects: []string{f.ne.Names.UserFilter(userID)}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for range info.NumPending {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// TestPropagate: the mirror is written and the reservation released, the
// events are stored in order under the user's subjects with their ids as
// message ids, their outbox rows deleted, and the notifications sent.
func TestPropagate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.pub.ApplyMirrors(ctx, []biz.Mirror{{UserID: "usr_1", BalanceMicros: 1000, Active: true, Version: 1}}); err != nil {
		t.Fatal(err)
	}
	if res, err := f.adm.Reserve(ctx, admission.Reservation{ID: "req-1", UserID: "usr_1", Micros: 300}); err != nil || res.Code != admission.OK {
		t.Fatalf("reserve: %+v %v", res, err)
	}
	keyChanged := make(chan *nats.Msg, 1)
	priceChanged := make(chan *nats.Msg, 1)
	for subj, ch := range map[string]chan *nats.Msg{events.SubjectKeyChanged: keyChanged, events.SubjectPriceChanged: priceChanged} {
		sub, err := f.ne.Conn.ChanSubscribe(f.ne.Names.Subject(subj), ch)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sub.Unsubscribe() }()
	}
	if err := f.ne.Conn.Flush(); err != nil {
		t.Fatal(err)
	}

	evs := []biz.OutboxEvent{
		event(t, "usr_1", events.TypeUsageRecorded, events.UsageRecorded{RequestID: "req-1"}),
		event(t, "usr_1", events.TypeBalanceChanged, events.BalanceChanged{BalanceMicros: 700, DeltaMicros: -300}),
	}
	err := f.pub.Propagate(ctx, biz.Effects{
		Mirrors:      []biz.Mirror{{UserID: "usr_1", BalanceMicros: 700, Active: true, Version: 2, ReleaseIDs: []string{"req-1"}}},
		Events:       evs,
		OutboxRows:   []string{"row-1"},
		KeyChanges:   []events.KeyChanged{{KeyID: "key_1", UserID: "usr_1"}},
		PriceVersion: 9,
	})
	if err != nil {
		t.Fatal(err)
	}

	st, err := f.adm.Get(ctx, "usr_1")
	if err != nil || st.BalanceMicros != 700 || st.Version != 2 || st.ReservedMicros != 0 {
		t.Errorf("mirror %+v, %v; want balance 700, version 2, nothing reserved", st, err)
	}
	msgs := f.stored(t, "usr_1")
	if len(msgs) != 2 {
		t.Fatalf("%d events stored, want 2", len(msgs))
	}
	for i, m := range msgs {
		if m.Headers().Get(jetstream.MsgIDHeader) != evs[i].ID || string(m.Data()) != string(evs[i].Envelope) ||
			m.Subject() != f.ne.Names.UserSubject("usr_1", evs[i].Type) {
			t.Errorf("event %d stored as %s %s %s", i, m.Subject(), m.Headers().Get(jetstream.MsgIDHeader), m.Data())
		}
	}
	if !slices.Equal(f.outbox.deleted, []string{"row-1"}) {
		t.Errorf("outbox rows deleted %v", f.outbox.deleted)
	}
	var kc events.KeyChanged
	if err := json.Unmarshal(receive(t, keyChanged).Data, &kc); err != nil || kc.KeyID != "key_1" {
		t.Errorf("key.changed %+v, %v", kc, err)
	}
	var pc struct {
		Version int64 `json:"version"`
	}
	if err := json.Unmarshal(receive(t, priceChanged).Data, &pc); err != nil || pc.Version != 9 {
		t.Errorf("price.changed %+v, %v", pc, err)
	}
}

func receive(t *testing.T, ch <-chan *nats.Msg) *nats.Msg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second): // a functional bound, not a timing assertion
		t.Fatal("no notification")
		return nil
	}
}

// TestPublishTwiceStoresOnce: an event published again (a redelivery, the
// sweeper after a crash) is stored once.
func TestPublishTwiceStoresOnce(t *testing.T) {
	f := newFixture(t)
	ev := event(t, "usr_1", events.TypeBalanceChanged, events.BalanceChanged{BalanceMicros: 1})
	for range 2 {
		if err := f.pub.PublishEvents(context.Background(), []biz.OutboxEvent{ev}, []string{"row-1"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.stored(t, "usr_1")); n != 1 {
		t.Errorf("%d copies stored, want 1", n)
	}
}

// TestFailedPublishKeepsTheRows: when the events cannot be stored, their
// outbox rows stay for the sweeper, which publishes and deletes them once
// the stream is back.
func TestFailedPublishKeepsTheRows(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ev := event(t, "usr_1", events.TypeBalanceChanged, events.BalanceChanged{BalanceMicros: 1})
	f.outbox.pending["row-1"], f.outbox.order = []biz.OutboxEvent{ev}, []string{"row-1"}
	if err := f.ne.JS.DeleteStream(ctx, f.ne.Names.Stream(events.StreamEvents)); err != nil {
		t.Fatal(err)
	}
	if err := f.pub.Propagate(ctx, biz.Effects{Events: []biz.OutboxEvent{ev}, OutboxRows: []string{"row-1"}}); err == nil {
		t.Fatal("publishing without a stream succeeded")
	}
	if n, err := f.pub.SweepOnce(ctx, 0, 10); err == nil || n != 0 {
		t.Fatalf("sweep without a stream: %d rows, %v", n, err)
	}
	if len(f.outbox.deleted) != 0 {
		t.Fatalf("rows deleted though nothing was stored: %v", f.outbox.deleted)
	}

	if err := natsbus.EnsureStreams(ctx, f.ne.JS, f.ne.Names, natsbus.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	if n, err := f.pub.SweepOnce(ctx, 0, 10); err != nil || n != 1 {
		t.Fatalf("sweep: %d rows, %v", n, err)
	}
	if !slices.Equal(f.outbox.deleted, []string{"row-1"}) || len(f.stored(t, "usr_1")) != 1 {
		t.Errorf("after the sweep: deleted %v", f.outbox.deleted)
	}
	if n, err := f.pub.SweepOnce(ctx, 0, 10); err != nil || n != 0 {
		t.Errorf("second sweep: %d rows, %v", n, err)
	}
}

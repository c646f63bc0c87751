package publisher

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

type nopMetrics struct{}

func (nopMetrics) Queued(int)            {}
func (nopMetrics) OutboxBytes(int64)     {}
func (nopMetrics) Published(string, int) {}
func (nopMetrics) Lost(string, int)      {}

func outcome(i int) *biz.Outcome {
	now := time.Now()
	return &biz.Outcome{RequestID: "req" + strconv.Itoa(1000+i), UserID: "usr_1", KeyID: "key_1", Model: "m",
		Endpoint: biz.EndpointChatCompletions, StatusCode: 200, StartedAt: now, FinishedAt: now,
		Usage: biz.Usage{Prompt: int64(i), Completion: 1}, UsageSource: biz.SourceUpstream, Status: biz.StatusOK,
		Reserved: true, ClientIP: netip.MustParseAddr("127.0.0.1")}
}

func TestOutboxWhileNATSIsDownThenReplayInOrder(t *testing.T) {
	env := testenv.NATS(t)
	target := strings.TrimPrefix(env.URL, "nats://")
	px := testenv.NewProxy(t, target)
	nc, err := nats.Connect("nats://"+px.Addr, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ob, err := OpenOutbox(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// A generous ack timeout: on a loaded CI machine a 1 s timeout can
	// expire while NATS is up, and the retried message may then land behind
	// newer ones; this test is about the outbox path, not ack timeouts.
	p := New(Config{QueueSize: 16, PublishTimeout: 5 * time.Second, MaxInFlight: 64, RetryInterval: 50 * time.Millisecond,
		BatchMaxEvents: 8, BatchMaxBytes: 64 << 10},
		nc, js, env.Names, ob, log, nopMetrics{})
	ctx, cancel := context.WithCancel(context.Background())
	go p.Run(ctx)

	const n = 60
	for i := 0; i < 10; i++ { // NATS up
		p.Emit(outcome(i))
	}
	waitFor(t, func() bool { return !ob.Pending() && p.q.len() == 0 })
	px.Cut()
	waitFor(t, func() bool { return !nc.IsConnected() })
	for i := 10; i < 50; i++ { // NATS down: queue, then outbox (queue of 16 overflows too)
		p.Emit(outcome(i))
	}
	waitFor(t, func() bool { return p.q.len() == 0 })
	if !ob.Pending() {
		t.Fatal("nothing in the outbox while NATS was down")
	}
	px.Restore()
	for i := 50; i < n; i++ { // back up: new events must queue behind the outbox
		p.Emit(outcome(i))
	}
	waitFor(t, func() bool { return nc.IsConnected() && !ob.Pending() && p.q.len() == 0 })
	cancel()
	<-p.Done()

	for _, stream := range []string{events.StreamBilling, events.StreamLogs} {
		if msgs := streamMsgs(t, env, stream); msgs >= n {
			t.Fatalf("%s: %d messages for %d events: nothing was batched", stream, msgs, n)
		}
		ids := streamIDs(t, env, stream)
		if len(ids) != n {
			t.Fatalf("%s holds %d messages, want %d (each once)", stream, len(ids), n)
		}
		for i, id := range ids {
			if want := "req" + strconv.Itoa(1000+i); id != want {
				t.Fatalf("%s message %d is %s, want %s (order)", stream, i, id, want)
			}
		}
	}
}

func TestDrainOnShutdownFlushesQueue(t *testing.T) {
	env := testenv.NATS(t)
	ob, err := OpenOutbox(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	p := New(Config{QueueSize: 1024, PublishTimeout: time.Second, MaxInFlight: 64}, env.Conn, env.JS, env.Names, ob,
		slog.New(slog.NewTextHandler(io.Discard, nil)), nopMetrics{})
	ctx, cancel := context.WithCancel(context.Background())
	for i := 0; i < 100; i++ {
		p.Emit(outcome(i)) // queued before the publisher even runs
	}
	go p.Run(ctx)
	cancel()
	<-p.Done()
	p.Emit(outcome(100)) // after the drain: spilled to the outbox, not lost
	if ids := streamIDs(t, env, events.StreamLogs); len(ids) != 100 {
		t.Fatalf("drained %d events, want 100", len(ids))
	}
	if !ob.Pending() {
		t.Fatal("an event emitted after shutdown was lost")
	}
}

// streamMsgs is how many messages a stream holds.
func streamMsgs(t *testing.T, env testenv.NATSEnv, stream string) uint64 {
	t.Helper()
	s, err := env.JS.Stream(context.Background(), env.Names.Stream(stream))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// streamIDs lists the event ids a stream holds, in order, batches
// unpacked.
func streamIDs(t *testing.T, env testenv.NATSEnv, stream string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := env.JS.Stream(ctx, env.Names.Stream(stream))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		raws, err := events.SplitBody(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if n := m.Header.Get(events.HeaderBatch); len(raws) > 1 && n != strconv.Itoa(len(raws)) {
			t.Fatalf("batch of %d envelopes says %q in %s", len(raws), n, events.HeaderBatch)
		}
		for _, raw := range raws {
			env, err := events.ParseEnvelope(raw)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, env.ID)
		}
	}
	return ids
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met in time")
}

package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lurus-switch/lurus-switch/log-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/log-service/internal/consumer"
	"github.com/lurus-switch/lurus-switch/log-service/internal/data"
	"github.com/lurus-switch/lurus-switch/log-service/internal/loadgen"
	"github.com/lurus-switch/lurus-switch/log-service/internal/logtest"
	"github.com/lurus-switch/lurus-switch/log-service/internal/metrics"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

// running is a started consumer.
type running struct {
	c    *consumer.Consumer
	done chan error
	once sync.Once
}

func start(t *testing.T, js jetstream.JetStream, cfg consumer.Config, ing consumer.Ingester, m *metrics.Metrics) *running {
	t.Helper()
	c, err := consumer.New(context.Background(), js, cfg, ing, m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	r := &running{c: c, done: make(chan error, 1)}
	go func() { r.done <- c.Start(context.Background()) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) { r.once.Do(func() { r.halt(t) }) }

func (r *running) halt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.c.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		t.Error("Start did not return after Stop")
	}
}

// eventually polls cond until it holds or a generous deadline passes (the
// deadline is a failure, not a measured timing).
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last state: %s", what, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// settled waits until want rows are stored and the durable has nothing
// left to deliver or acknowledge.
func settled(t *testing.T, r *running, db logtest.DB, want uint64) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d rows and no lag", want), func() (bool, string) {
		lag, err := r.c.Lag(context.Background())
		n := db.Count(t, "request_log")
		return err == nil && lag == 0 && n == want, fmt.Sprintf("rows=%d lag=%d err=%v", n, lag, err)
	})
}

func baseConfig(ne testenv.NATSEnv) consumer.Config {
	return consumer.Config{Names: ne.Names, BatchSize: 1000, Linger: 5 * time.Millisecond, Workers: 2,
		AckWait: 3 * time.Second, FlushTimeout: 2 * time.Second, MaxAckPending: 8000, AckMode: natsbus.AckAsync,
		Backoff: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}, LagInterval: time.Second}
}

// assertExactlyOnce checks the table, both rollups and every stats query
// against recs, computed here independently.
func assertExactlyOnce(t *testing.T, db logtest.DB, recs []biz.Record) {
	t.Helper()
	n := uint64(len(recs))
	var prompt, completion uint64
	for _, r := range recs {
		prompt += uint64(r.PromptTokens)
		completion += uint64(r.CompletionTokens)
	}
	var uniq uint64
	if err := db.Conn.QueryRow(context.Background(), "SELECT uniqExact(request_id) FROM request_log").Scan(&uniq); err != nil {
		t.Fatal(err)
	}
	if got := db.Count(t, "request_log"); got != n || uniq != n {
		t.Fatalf("request_log: %d rows, %d distinct ids, want %d", got, uniq, n)
	}
	for _, table := range []string{"request_log_hourly", "request_log_daily"} {
		if got := db.SumRequests(t, table); got != n {
			t.Fatalf("%s counts %d requests, want %d", table, got, n)
		}
	}
	ctx := context.Background()
	q := biz.NewQueries(db.Store, biz.QueryLimits{MaxRange: 93 * 24 * time.Hour, DefaultRange: 24 * time.Hour, DefaultLimit: 1000})
	admin := biz.Principal{Admin: true}
	req := biz.Request{From: loadgen.Base.Add(-time.Hour), To: loadgen.Base.Add(48 * time.Hour)}
	s, err := q.Summary(ctx, admin, req)
	if err != nil {
		t.Fatal(err)
	}
	if s.Requests != n || s.PromptTokens != prompt || s.CompletionTokens != completion {
		t.Fatalf("summary: %d requests, %d/%d tokens; want %d, %d/%d", s.Requests, s.PromptTokens, s.CompletionTokens, n, prompt, completion)
	}
	for _, g := range []biz.Granularity{biz.Hourly, biz.Daily} {
		series, err := q.Series(ctx, admin, g, req)
		if err != nil {
			t.Fatal(err)
		}
		var sum, tok uint64
		for _, b := range series.Items {
			sum += b.Requests
			tok += b.PromptTokens
		}
		if sum != n || tok != prompt {
			t.Fatalf("%s series: %d requests, %d prompt tokens; want %d, %d", g, sum, tok, n, prompt)
		}
	}
	for _, d := range []biz.Dimension{biz.ByModel, biz.ByProvider, biz.ByUser} {
		top, err := q.Top(ctx, admin, d, req)
		if err != nil {
			t.Fatal(err)
		}
		var sum uint64
		for _, r := range top.Items {
			sum += r.Requests
		}
		if sum != n {
			t.Fatalf("top by %s: %d requests, want %d", d, sum, n)
		}
	}
}

// TestExactlyOnce publishes 10,000 log.write events while batches fail
// after their commit and some acks are lost, then replays every event twice
// (under new message ids, and by resetting the durable): request_log, the
// rollups and every stats query count 10,000 throughout.
func TestExactlyOnce(t *testing.T) {
	ne := testenv.NATS(t)
	db := logtest.ClickHouse(t)
	m := metrics.New(prometheus.NewRegistry())
	ing := biz.NewIngester(db.Store)
	var forced atomic.Int32
	ing.AfterInsert = func(n int) error {
		if n > 0 && forced.Add(1) <= 3 {
			return errors.New("forced failure after commit")
		}
		return nil
	}
	var skipped atomic.Int32
	cfg := baseConfig(ne)
	cfg.BeforeAck = func(d natsbus.Delivery) bool {
		if d.NumDelivered == 1 && d.StreamSeq%97 == 0 {
			skipped.Add(1)
			return false // as if the process died between commit and ack
		}
		return true
	}
	r := start(t, ne.JS, cfg, ing, m)
	ctx := context.Background()
	subject := ne.Names.Subject(events.SubjectLogWrite)
	recs := loadgen.Records("once", 10000)
	if err := loadgen.Publish(ctx, ne.JS, subject, recs, ""); err != nil {
		t.Fatal(err)
	}
	settled(t, r, db, 10000)
	assertExactlyOnce(t, db, recs)
	if forced.Load() < 3 || skipped.Load() == 0 {
		t.Fatalf("the retries were not exercised: %d forced failures, %d skipped acks", forced.Load(), skipped.Load())
	}

	// Replay 1: the same records under new message ids (past JetStream's
	// duplicate window, as an outbox might resend them).
	if err := loadgen.Publish(ctx, ne.JS, subject, recs, "-again"); err != nil {
		t.Fatal(err)
	}
	settled(t, r, db, 10000)

	// Replay 2: reset the durable; all 20,000 messages come again.
	r.stop(t)
	if err := ne.JS.DeleteConsumer(ctx, ne.Names.Stream(events.StreamLogs), events.DurableLogs); err != nil {
		t.Fatal(err)
	}
	r = start(t, ne.JS, baseConfig(ne), ing, m)
	eventually(t, "the reset durable to deliver everything", func() (bool, string) {
		lag, err := r.c.Lag(ctx)
		dups := testutil.ToFloat64(m.Duplicates.WithLabelValues(metrics.SourceNATS))
		return err == nil && lag == 0 && dups >= 30000, fmt.Sprintf("lag=%d duplicates=%v", lag, dups)
	})
	assertExactlyOnce(t, db, recs)
	if got := testutil.ToFloat64(m.RowsIngested.WithLabelValues(metrics.SourceNATS)); got != 10000 {
		t.Fatalf("lurus_log_rows_ingested_total = %v, want 10000", got)
	}
	// At least the three forced failures; a loaded machine can add a real
	// insert timeout or two, which exactly-once above already covers.
	if got := testutil.ToFloat64(m.InsertErrors.WithLabelValues(metrics.SourceNATS)); got < 3 {
		t.Fatalf("lurus_log_insert_errors_total = %v, want at least the 3 forced", got)
	}
}

// TestClickHouseOutageLosesNothing cuts ClickHouse off while events are
// being published: they wait in JetStream (bounded by MaxAckPending), and
// once ClickHouse is back every one is stored exactly once.
func TestClickHouseOutageLosesNothing(t *testing.T) {
	ne := testenv.NATS(t)
	db := logtest.ClickHouse(t)
	px := testenv.NewProxy(t, db.Conf.Addr)
	cfg := db.Conf
	cfg.Addr, cfg.DialTimeout, cfg.ReadTimeout = px.Addr, time.Second, 5*time.Second
	conn, err := data.Open(cfg, "", cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	m := metrics.New(prometheus.NewRegistry())
	ccfg := baseConfig(ne)
	ccfg.BatchSize, ccfg.MaxAckPending, ccfg.AckWait = 200, 1000, 10*time.Second
	ccfg.AckMode = natsbus.AckSync // the other tests cover async
	r := start(t, ne.JS, ccfg, biz.NewIngester(data.NewStore(conn)), m)

	ctx := context.Background()
	subject := ne.Names.Subject(events.SubjectLogWrite)
	recs := loadgen.Records("outage", 4000)
	published := make(chan error, 1)
	go func() {
		for i := 0; i < len(recs); i += 200 {
			if err := loadgen.Publish(ctx, ne.JS, subject, recs[i:i+200], ""); err != nil {
				published <- err
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		published <- nil
	}()
	eventually(t, "some rows before the outage", func() (bool, string) {
		n := db.Count(t, "request_log")
		return n >= 400, fmt.Sprintf("rows=%d", n)
	})
	px.Cut()
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	eventually(t, "failed flushes while ClickHouse is away", func() (bool, string) {
		e := testutil.ToFloat64(m.InsertErrors.WithLabelValues(metrics.SourceNATS))
		return e >= 3, fmt.Sprintf("insert errors=%v", e)
	})
	info, err := ne.JS.Consumer(ctx, ne.Names.Stream(events.StreamLogs), events.DurableLogs)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := info.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ci.NumAckPending > ccfg.MaxAckPending {
		t.Fatalf("%d messages in flight, MaxAckPending is %d", ci.NumAckPending, ccfg.MaxAckPending)
	}
	stored := db.Count(t, "request_log")
	if stored >= 4000 || ci.NumPending+uint64(ci.NumAckPending) == 0 {
		t.Fatalf("during the outage: %d rows stored, %d pending, %d in flight", stored, ci.NumPending, ci.NumAckPending)
	}
	px.Restore()
	settled(t, r, db, 4000)
	assertExactlyOnce(t, db, recs)
}

// TestUndecodableAndInvalidAreDeadLettered: a body that is not an envelope
// and a record that fails validation go to the dead subject, are acked,
// and do not hold up the valid ones.
func TestUndecodableAndInvalidAreDeadLettered(t *testing.T) {
	ne := testenv.NATS(t)
	db := logtest.ClickHouse(t)
	m := metrics.New(prometheus.NewRegistry())
	r := start(t, ne.JS, baseConfig(ne), biz.NewIngester(db.Store), m)
	ctx := context.Background()
	subject := ne.Names.Subject(events.SubjectLogWrite)

	garbage := nats.NewMsg(subject)
	garbage.Data = []byte("not json")
	garbage.Header.Set(jetstream.MsgIDHeader, "garbage-1")
	if _, err := ne.JS.PublishMsg(ctx, garbage); err != nil {
		t.Fatal(err)
	}
	bad := loadgen.Record("dead", 99)
	bad.StatusCode = 5000
	recs := append(loadgen.Records("dead", 5), bad)
	if err := loadgen.Publish(ctx, ne.JS, subject, recs, ""); err != nil {
		t.Fatal(err)
	}
	settled(t, r, db, 5)
	if got := testutil.ToFloat64(m.DeadLetters); got != 2 {
		t.Fatalf("dead letters = %v, want 2", got)
	}
	st, err := ne.JS.Stream(ctx, ne.Names.Stream(events.StreamDead))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil || info.State.Msgs != 2 {
		t.Fatalf("dead stream holds %d messages (%v), want 2", info.State.Msgs, err)
	}
}

func TestDecode(t *testing.T) {
	now := time.Now()
	rec := loadgen.Record("dec", 1)
	env, err := events.NewEnvelope(rec.RequestID, events.TypeLogWrite, rec.UserID, rec.CreatedAt, events.LogRecord(rec))
	if err != nil {
		t.Fatal(err)
	}
	got, err := consumer.Decode(env, now)
	if err != nil || got != rec {
		t.Fatalf("decode: %+v %v", got, err)
	}
	env.Type = events.TypeBillingUsage
	if _, err := consumer.Decode(env, now); err == nil {
		t.Fatal("accepted a billing.usage envelope")
	}
}

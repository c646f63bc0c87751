package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/billing-service/migrations"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

const (
	testAdmin    = "test-admin-token"
	testInternal = "test-internal-token"
	testPepper   = "test-pepper"
)

// harness is one billing-service running in-process on a random port
// against its own database, Redis prefix and NATS namespace.
type harness struct {
	t    *testing.T
	app  *App
	cfg  *conf.Config
	base string
	pg   testenv.PostgresDB
	re   testenv.RedisEnv
	ne   testenv.NATSEnv
	// stop cancels Serve and returns its error (once; Cleanup calls it too).
	stop func() error
}

// start runs the service; mod may change the config or the app before it
// serves. When the test ends, the service stops and the ledger invariant
// (balance == sum of ledger entries, for every user) is checked.
func start(t *testing.T, mod func(*conf.Config, *App)) *harness {
	t.Helper()
	h := &harness{t: t, pg: testenv.Postgres(t, migrations.FS, migrations.Dir), re: testenv.Redis(t), ne: testenv.NATS(t)}
	cfg := &conf.Config{}
	cfg.SetDefaults()
	cfg.Server.Addr = "127.0.0.1:0"
	cfg.Database.URL = h.pg.URL
	cfg.Redis.Addr, cfg.Redis.Prefix = h.re.Addr, h.re.Prefix
	cfg.NATS.URL, cfg.NATS.Namespace = h.ne.URL, h.ne.Namespace
	cfg.Consumer.AckWait = 2 * time.Second
	cfg.Consumer.RetryBackoff, cfg.Consumer.MaxRetryDelay = 100*time.Millisecond, 500*time.Millisecond
	cfg.Consumer.LagInterval = 100 * time.Millisecond
	cfg.SSE.KeepAlive = 300 * time.Millisecond
	cfg.Billing.OutboxSweepInterval, cfg.Billing.OutboxMinAge = 200*time.Millisecond, time.Second
	h.cfg = cfg
	log := telemetry.NewLogger(testWriter{t}, serviceName, slog.LevelWarn)
	ctx, cancel := context.WithCancel(context.Background())
	app, cleanup, err := newApp(ctx, cfg, conf.Secrets{AdminToken: testAdmin, InternalToken: testInternal, KeyPepper: testPepper}, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	h.app = app
	if mod != nil {
		mod(cfg, app)
	}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, ready) }()
	select {
	case addr := <-ready:
		h.base = "http://" + addr
	case err := <-done:
		cancel()
		cleanup()
		t.Fatalf("serve: %v", err)
	}
	h.stop = sync.OnceValue(func() error { cancel(); return <-done })
	t.Cleanup(func() {
		h.checkLedger()
		if err := h.stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
		cleanup()
	})
	return h
}

// testWriter sends service logs to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// checkLedger asserts balance == sum of ledger entries for every user.
func (h *harness) checkLedger() {
	h.t.Helper()
	bad, err := h.app.Store.LedgerMismatch(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	if len(bad) > 0 {
		h.t.Fatalf("balance != sum(ledger_entries) for users %v", bad)
	}
}

// do sends a request and returns status and body.
func (h *harness) do(method, path, token string, body any, hdr ...string) (int, []byte) {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.base+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// must decodes a successful answer into out.
func (h *harness) must(status int, raw []byte, want int, out any) {
	h.t.Helper()
	if status != want {
		h.t.Fatalf("status %d, want %d: %s", status, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			h.t.Fatalf("decode %s: %v", raw, err)
		}
	}
}

// newUser creates a user with a balance (topped up through the API) and
// an API key; it returns the user id, key id and key.
func (h *harness) newUser(balance int64, extra map[string]any) (userID, keyID, key string) {
	h.t.Helper()
	body := map[string]any{"name": "u"}
	for k, v := range extra {
		body[k] = v
	}
	var u biz.User
	st, raw := h.do("POST", "/api/v1/billing/users", testAdmin, body)
	h.must(st, raw, 201, &u)
	if balance != 0 {
		st, raw = h.do("POST", "/api/v1/billing/users/"+u.ID+"/topup", testAdmin,
			map[string]any{"amount_micros": balance}, "Idempotency-Key", "init-"+u.ID)
		h.must(st, raw, 201, nil)
	}
	var k struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	st, raw = h.do("POST", "/api/v1/billing/users/"+u.ID+"/keys", testAdmin, map[string]any{"name": "k"})
	h.must(st, raw, 201, &k)
	return u.ID, k.ID, k.Key
}

// price sets a price for pattern: in and out micro-USD per million tokens.
func (h *harness) price(pattern string, in, out int64) {
	h.t.Helper()
	st, raw := h.do("POST", "/api/v1/billing/prices", testAdmin, map[string]any{"model_pattern": pattern,
		"input_micros_per_mtok": in, "output_micros_per_mtok": out, "cached_input_micros_per_mtok": in / 2, "cache_write_micros_per_mtok": in})
	h.must(st, raw, 201, nil)
}

// usage returns a billing.usage payload.
func usage(reqID, userID, keyID string, prompt, completion int64) events.Usage {
	now := time.Now().UTC()
	return events.Usage{RequestID: reqID, UserID: userID, KeyID: keyID, Model: "gpt-test", UpstreamModel: "gpt-test",
		APIFormat: "openai", Endpoint: "/v1/chat/completions", PromptTokens: prompt, CompletionTokens: completion,
		UsageSource: events.UsageSourceUpstream, Status: events.StatusOK, ReservationID: reqID,
		StartedAt: now.Add(-time.Second), FinishedAt: now}
}

func usageEnvelope(t testing.TB, u events.Usage) events.Envelope {
	t.Helper()
	env, err := events.NewEnvelope(u.RequestID, events.TypeBillingUsage, u.UserID, u.FinishedAt, u)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// publish stores u on billing.usage with msgID as Nats-Msg-Id (distinct
// ids defeat the stream's dedup, so a replay really reaches the consumer).
func (h *harness) publish(u events.Usage, msgID string) {
	h.t.Helper()
	env := usageEnvelope(h.t, u)
	env.ID = msgID
	if _, err := natsbus.NewPublisher(h.ne.JS).Publish(context.Background(), h.ne.Names.Subject(events.SubjectBillingUsage), env); err != nil {
		h.t.Fatal(err)
	}
}

// waitSettled waits until the settlement consumer has acked everything.
func (h *harness) waitSettled() {
	h.t.Helper()
	h.eventually("consumer lag 0", func() bool {
		c, err := h.ne.JS.Consumer(context.Background(), h.ne.Names.Stream(events.StreamBilling), events.DurableBilling)
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// eventually polls cond for up to 15 s (a functional bound, not a timing
// assertion).
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// count runs a count query on the test database.
func (h *harness) count(sql string, args ...any) int64 {
	h.t.Helper()
	var n int64
	if err := h.pg.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// userEvents reads every stored event of a user, in stream order.
func (h *harness) userEvents(userID string) []events.Envelope {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := h.ne.JS.OrderedConsumer(ctx, h.ne.Names.Stream(events.StreamEvents), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{h.ne.Names.UserFilter(userID)}})
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []events.Envelope
	for i := uint64(0); i < info.NumPending; i++ {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			h.t.Fatal(err)
		}
		env, err := events.ParseEnvelope(msg.Data())
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, env)
	}
	return out
}

// deadLetters returns the bodies stored on billing.usage's dead subject.
func (h *harness) deadLetters() [][]byte {
	h.t.Helper()
	var out [][]byte
	for _, m := range h.deadLetterMsgs() {
		out = append(out, m.Data())
	}
	return out
}

// deadLetterMsgs reads billing.usage's dead subject, headers included.
func (h *harness) deadLetterMsgs() []jetstream.Msg {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := h.ne.JS.OrderedConsumer(ctx, h.ne.Names.Stream(events.StreamDead), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{h.ne.Names.DeadSubject(events.StreamBilling)}})
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []jetstream.Msg
	for i := uint64(0); i < info.NumPending; i++ {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, msg)
	}
	return out
}

// publishBatch stores us as one batch message, the way the gateway does.
func (h *harness) publishBatch(us ...events.Usage) {
	h.t.Helper()
	bodies := make([][]byte, len(us))
	for i, u := range us {
		b, err := json.Marshal(usageEnvelope(h.t, u))
		if err != nil {
			h.t.Fatal(err)
		}
		bodies[i] = b
	}
	m := natsbus.NewBatchMsg(h.ne.Names.Subject(events.SubjectBillingUsage), natsbus.NewBatchID(), events.TypeBillingUsage,
		len(us), events.AppendBatch(nil, bodies...))
	if _, err := h.ne.JS.PublishMsg(context.Background(), m); err != nil {
		h.t.Fatal(err)
	}
}

// countTypes counts events by type, and usage.recorded per request id.
func countTypes(evs []events.Envelope) map[string]int {
	out := map[string]int{}
	for _, e := range evs {
		out[e.Type]++
		if e.Type == events.TypeUsageRecorded {
			var d events.UsageRecorded
			_ = json.Unmarshal(e.Data, &d)
			out["usage:"+d.RequestID]++
		}
	}
	return out
}

func (h *harness) user(id string) biz.User {
	h.t.Helper()
	var u biz.User
	st, raw := h.do("GET", "/api/v1/billing/users/"+id, testAdmin, nil)
	h.must(st, raw, 200, &u)
	return u
}

func fmtReq(prefix string, i int) string { return fmt.Sprintf("%s-%04d", prefix, i) }

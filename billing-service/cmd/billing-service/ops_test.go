package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/metrics"
)

// TestMetricsExported: every metric a dashboard or alert may use is on
// /metrics (the HTTP ones once a request was served), with the seed's names.
func TestMetricsExported(t *testing.T) {
	h := start(t, nil)
	h.do("GET", "/health", "", nil)
	st, raw := h.do("GET", "/metrics", "", nil)
	if st != 200 {
		t.Fatalf("/metrics: %d", st)
	}
	body := string(raw)
	seed := []string{"billing_http_requests_total", "billing_balance_checks_total", "billing_usage_records_total",
		"billing_tokens_processed_total", "billing_cost_usd_total", "billing_quota_updates_total",
		"billing_low_balance_alerts_total", "billing_nats_events_published_total"}
	for _, name := range append(seed, metrics.Names...) {
		if !strings.Contains(body, "\n# TYPE "+name+" ") {
			t.Errorf("metric %s not exported", name)
		}
	}
	for _, path := range []string{"/ready"} {
		if st, raw := h.do("GET", path, "", nil); st != 200 {
			t.Errorf("%s: %d %s", path, st, raw)
		}
	}
}

// TestShutdownEndsStreams: on shutdown an open SSE stream ends and Serve
// returns cleanly.
func TestShutdownEndsStreams(t *testing.T) {
	h := start(t, nil)
	userID, _, key := h.newUser(0, nil)
	ch, st := sseClient(t, context.Background(), h.base+"/api/v1/billing/sync/"+userID+"/stream", key, "")
	if st != 200 {
		t.Fatalf("stream: %d", st)
	}
	<-ch // sync_state
	stopped := make(chan error, 1)
	go func() { stopped <- h.stop() }()
	deadline := time.After(15 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-ch:
		case <-deadline:
			t.Fatal("stream still open after shutdown")
		}
	}
	if err := <-stopped; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// TestCommands runs the migrate and rebuild-cache subcommands as make run
// does, with the shipped config and environment overrides.
func TestCommands(t *testing.T) {
	h := start(t, nil)
	userID, _, _ := h.newUser(1234, nil)
	t.Setenv("LURUS_BILLING_DB_URL", h.pg.URL)
	t.Setenv("LURUS_REDIS_ADDR", h.re.Addr)
	t.Setenv("LURUS_REDIS_PREFIX", h.re.Prefix)
	t.Setenv("LURUS_NATS_URL", h.ne.URL)
	t.Setenv("LURUS_NATS_NAMESPACE", h.ne.Namespace)
	cfg := "../../configs/config.yaml"
	var out strings.Builder
	if err := run([]string{"-config", cfg, "migrate"}, &out); err != nil {
		t.Fatalf("migrate again: %v", err)
	}
	if err := h.re.Client.Del(context.Background(), h.app.Adm.AcctKey(userID)).Err(); err != nil {
		t.Fatal(err)
	}
	// command first, as the other services take it
	if err := run([]string{"rebuild-cache", "-config", cfg}, &out); err != nil {
		t.Fatalf("rebuild-cache: %v", err)
	}
	if !strings.Contains(out.String(), "rebuild-cache: 1 users mirrored") || !strings.Contains(out.String(), "done, 1 users") {
		t.Fatalf("progress output: %q", out.String())
	}
	if st, err := h.app.Adm.Get(context.Background(), userID); err != nil || st.BalanceMicros != 1234 {
		t.Fatalf("mirror after rebuild-cache: %+v %v", st, err)
	}
	if err := run([]string{"-config", cfg, "bogus"}, &out); err == nil {
		t.Fatal("unknown command accepted")
	}
}

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

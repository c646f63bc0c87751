package server_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/log-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/log-service/internal/loadgen"
	"github.com/lurus-switch/lurus-switch/log-service/internal/server"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

func TestAuth(t *testing.T) {
	e := newEnv(t)
	e.insert(t, loadgen.Records("auth", 6))      // users usr_0, usr_1, usr_2
	other := loadgen.Record("auth", 1).RequestID // usr_1's
	own := loadgen.Record("auth", 0).RequestID   // usr_0's
	tests := []struct {
		name, method, path, token string
		status                    int
		reason                    apperr.Reason
	}{
		{"no credentials", "GET", "/api/v1/logs", "", 401, apperr.ReasonMissingCredentials},
		{"wrong admin token", "GET", "/api/v1/logs", "nope", 401, apperr.ReasonInvalidCredentials},
		{"internal token is not admin", "GET", "/api/v1/stats/summary", internalToken, 401, apperr.ReasonInvalidCredentials},
		{"admin", "GET", "/api/v1/logs", adminToken, 200, ""},
		{"user key", "GET", "/api/v1/logs", keyUser0, 200, ""},
		{"user key, own user filter", "GET", "/api/v1/logs" + q("user_id", "usr_0"), keyUser0, 200, ""},
		{"user key, another user", "GET", "/api/v1/stats/hourly" + q("user_id", "usr_1"), keyUser0, 403, apperr.ReasonForbidden},
		{"user key, own log", "GET", "/api/v1/logs/" + own, keyUser0, 200, ""},
		{"user key, another user's log is not found", "GET", "/api/v1/logs/" + other, keyUser0, 404, apperr.ReasonLogNotFound},
		{"unknown key", "GET", "/api/v1/logs", keyUnknown, 401, apperr.ReasonInvalidCredentials},
		{"malformed key", "GET", "/api/v1/logs", "sk-lurus-short", 401, apperr.ReasonInvalidCredentials},
		{"disabled user", "GET", "/api/v1/logs", keyDisabled, 403, apperr.ReasonUserDisabled},
		{"batch refuses the admin token", "POST", "/api/v1/logs/batch", adminToken, 401, apperr.ReasonInvalidCredentials},
		{"batch refuses a user key", "POST", "/api/v1/logs/batch", keyUser0, 401, apperr.ReasonInvalidCredentials},
		{"batch without credentials", "POST", "/api/v1/logs/batch", "", 401, apperr.ReasonMissingCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, raw := e.call(t, tt.method, tt.path, tt.token, []byte(`{"records":[]}`))
			if tt.reason == "" {
				if status != tt.status {
					t.Fatalf("status %d: %s", status, raw)
				}
				return
			}
			wantError(t, status, raw, tt.status, tt.reason)
		})
	}
}

// TestUserKeySeesOnlyItsUser: every row a user's key gets back is its
// user's, on every route.
func TestUserKeySeesOnlyItsUser(t *testing.T) {
	e := newEnv(t)
	recs := loadgen.Records("scope", 30)
	e.insert(t, recs)
	window := q("from", rfc(loadgen.Base), "to", rfc(loadgen.Base.Add(2*1e9*3600)))
	var page biz.Page
	e.get(t, "/api/v1/logs"+window, keyUser1, &page)
	if len(page.Items) != 10 {
		t.Fatalf("usr_1 sees %d rows, want 10", len(page.Items))
	}
	for _, it := range page.Items {
		if it.UserID != "usr_1" {
			t.Fatalf("usr_1 saw a row of %s", it.UserID)
		}
	}
	var top biz.Top
	e.get(t, "/api/v1/stats/users"+window, keyUser1, &top)
	if len(top.Items) != 1 || top.Items[0].Key != "usr_1" || top.Items[0].Requests != 10 {
		t.Fatalf("top users for usr_1: %+v", top.Items)
	}
	var s biz.Summary
	e.get(t, "/api/v1/stats/summary"+window, keyUser1, &s)
	if s.Requests != 10 {
		t.Fatalf("usr_1 summary counts %d", s.Requests)
	}
}

func TestKeyVerificationIsCached(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 5; i++ {
		if status, raw := e.call(t, "GET", "/api/v1/stats/summary", keyUser0, nil); status != 200 {
			t.Fatalf("%d %s", status, raw)
		}
		status, raw := e.call(t, "GET", "/api/v1/stats/summary", keyUnknown, nil)
		wantError(t, status, raw, 401, apperr.ReasonInvalidCredentials)
	}
	if n := e.billing.calls.Load(); n != 2 {
		t.Fatalf("billing was asked %d times, want 2 (one per key)", n)
	}
}

func TestBillingDownIsUnavailable(t *testing.T) {
	e := newEnv(t)
	e.billing.srv.Close()
	status, raw := e.call(t, "GET", "/api/v1/logs", keyUser0, nil)
	wantError(t, status, raw, http.StatusServiceUnavailable, apperr.ReasonDependencyDown)
	// The admin does not depend on billing.
	if status, raw := e.call(t, "GET", "/api/v1/logs", adminToken, nil); status != 200 {
		t.Fatalf("%d %s", status, raw)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	e := newEnv(t, func(o *server.Options) {
		o.Ready = []server.Check{{Name: "clickhouse", Ping: func(context.Context) error { return nil }},
			{Name: "nats", Ping: func(context.Context) error { return errors.New("disconnected") }}}
	})
	if status, raw := e.call(t, "GET", "/health", "", nil); status != 200 || !strings.Contains(string(raw), "ok") {
		t.Fatalf("health: %d %s", status, raw)
	}
	status, raw := e.call(t, "GET", "/ready", "", nil)
	b := wantError(t, status, raw, 503, apperr.ReasonDependencyDown)
	if !strings.Contains(b.Error.Message, "nats") || strings.Contains(b.Error.Message, "clickhouse") || strings.Contains(b.Error.Message, "disconnected") {
		t.Fatalf("ready names the failed dependency only, without its error: %q", b.Error.Message)
	}
	e.call(t, "GET", "/api/v1/logs", adminToken, nil)
	status, raw = e.call(t, "GET", "/metrics", "", nil)
	if status != 200 {
		t.Fatalf("metrics: %d", status)
	}
	for _, name := range []string{"lurus_log_rows_ingested_total", "lurus_log_batch_size", "lurus_log_flush_duration_seconds",
		"lurus_log_consumer_lag", "lurus_log_insert_errors_total", "lurus_log_http_requests_total",
		`lurus_log_http_requests_total{code="200",method="GET",route="/api/v1/logs"}`, "lurus_log_http_request_duration_seconds"} {
		if !strings.Contains(string(raw), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	okEnv := newEnv(t)
	if status, raw := okEnv.call(t, "GET", "/ready", "", nil); status != 200 {
		t.Fatalf("ready with ClickHouse up: %d %s", status, raw)
	}
}

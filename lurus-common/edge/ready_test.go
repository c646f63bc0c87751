package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReady(t *testing.T) {
	up := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("dial tcp 10.0.0.7:6379: connection refused") }
	for _, tt := range []struct {
		name       string
		checks     []Check
		status     int
		body       string
		logsReason bool
	}{
		{"no checks", nil, 200, `{"status":"ready","checks":{}}`, false},
		{"all up", []Check{{"nats", up}, {"redis", up}}, 200, `{"status":"ready","checks":{"nats":"ok","redis":"ok"}}`, false},
		{"one down", []Check{{"nats", up}, {"redis", down}}, 503,
			`{"status":"unavailable","checks":{"nats":"ok","redis":"unavailable"},` +
				`"error":{"reason":"DEPENDENCY_UNAVAILABLE","message":"not ready: redis unavailable"}}`, true},
		{"a check that outlives the deadline", []Check{{"clickhouse", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}}, 503,
			`{"status":"unavailable","checks":{"clickhouse":"unavailable"},` +
				`"error":{"reason":"DEPENDENCY_UNAVAILABLE","message":"not ready: clickhouse unavailable"}}`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			if tt.name == "a check that outlives the deadline" {
				cancel() // the request's own context ends first; the check sees it
			}
			defer cancel()
			rec := httptest.NewRecorder()
			Ready(tt.checks, slog.New(slog.NewJSONHandler(&logs, nil))).ServeHTTP(rec,
				httptest.NewRequestWithContext(ctx, http.MethodGet, "/ready", nil))
			if rec.Code != tt.status || strings.TrimSpace(rec.Body.String()) != tt.body {
				t.Fatalf("got %d %s\nwant %d %s", rec.Code, rec.Body, tt.status, tt.body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			if strings.Contains(rec.Body.String(), "refused") || strings.Contains(rec.Body.String(), "context canceled") {
				t.Fatal("a check's error reached the caller")
			}
			if tt.logsReason != strings.Contains(logs.String(), `"msg":"not ready"`) {
				t.Fatalf("log: %s", logs.String())
			}
		})
	}
}

func TestHealth(t *testing.T) {
	rec := httptest.NewRecorder()
	Health().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
	var b HealthBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || rec.Code != 200 || b.Status != "ok" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

func TestOps(t *testing.T) {
	var logs bytes.Buffer
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("# metrics\n")) })
	var routes []string
	h := Access{Log: slog.New(slog.NewJSONHandler(&logs, nil)), Observe: func(_ *http.Request, e Entry) { routes = append(routes, e.Route) }}.
		Wrap(Ops([]Check{{"nats", func(context.Context) error { return nil }}}, nil, metrics))
	for _, tt := range []struct {
		path, route, body string
		status            int
	}{
		{"/health", "/health", `{"status":"ok"}`, 200},
		{"/ready", "/ready", `{"status":"ready","checks":{"nats":"ok"}}`, 200},
		{"/metrics", "/metrics", "# metrics", 200},
		{"/other", "unmatched", "404 page not found", 404},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
		if rec.Code != tt.status || strings.TrimSpace(rec.Body.String()) != tt.body || routes[len(routes)-1] != tt.route {
			t.Errorf("%s: %d %q route %q", tt.path, rec.Code, rec.Body, routes[len(routes)-1])
		}
	}
}

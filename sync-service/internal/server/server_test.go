package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"

	"github.com/lurus-switch/lurus-switch/sync-service/internal/conf"
)

func newTestServer(t *testing.T, checks []Check) (*httptest.Server, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	var c conf.Config
	c.SetDefaults()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	hs := New(c.Server, Routes{WS: ok, Ticket: ok, Ready: checks}, telemetry.NewRegistry(), telemetry.NewLogger(&logs, "sync-service", telemetry.ParseLevel("info")))
	srv := httptest.NewServer(hs.Handler)
	t.Cleanup(srv.Close)
	return srv, &logs
}

func TestRoutesAndErrors(t *testing.T) {
	srv, logs := newTestServer(t, []Check{
		{Name: "nats", Ping: func(context.Context) error { return nil }},
		{Name: "redis", Ping: func(context.Context) error { return errors.New("connection refused") }},
	})
	tests := []struct {
		method, path string
		body         string
		status       int
		reason       string
	}{
		{"GET", "/health", "", 200, ""},
		{"GET", "/ws/sync?ticket=tkt_secret", "", 418, ""},
		{"POST", "/ws/sync", "", 405, "UNSUPPORTED_ACTION"},
		{"POST", "/api/v1/sync/ticket", "", 418, ""},
		{"OPTIONS", "/api/v1/sync/ticket", "", 418, ""},
		{"GET", "/api/v1/sync/ticket", "", 405, "UNSUPPORTED_ACTION"},
		{"POST", "/api/v1/sync/ticket", strings.Repeat("x", 5000), 413, "BODY_TOO_LARGE"},
		{"GET", "/nope", "", 404, "ROUTE_NOT_FOUND"},
		{"GET", "/ready", "", 503, "DEPENDENCY_UNAVAILABLE"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error  struct{ Reason string } `json:"error"`
			Status string                  `json:"status"`
			Checks map[string]string       `json:"checks"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || body.Error.Reason != tt.reason {
			t.Errorf("%s %s: %d %q, want %d %q", tt.method, tt.path, resp.StatusCode, body.Error.Reason, tt.status, tt.reason)
		}
		if resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s %s: no X-Request-Id", tt.method, tt.path)
		}
		// The failed check is named; why it failed goes to the log only.
		if tt.path == "/ready" && (body.Status != "unavailable" || body.Checks["nats"] != "ok" || body.Checks["redis"] != "unavailable") {
			t.Errorf("ready body %+v", body)
		}
	}
	out := logs.String()
	if !strings.Contains(out, `"dependency":"redis"`) || !strings.Contains(out, "connection refused") {
		t.Errorf("the failed check's error is not logged: %s", out)
	}
	if strings.Contains(out, "tkt_secret") {
		t.Fatal("the query string (a ticket) reached the logs")
	}
	if n := strings.Count(out, `"msg":"request"`); n != len(tests) {
		t.Fatalf("%d request log lines for %d requests", n, len(tests))
	}
}

func TestRequestID(t *testing.T) {
	srv, logs := newTestServer(t, nil)
	for _, tt := range []struct {
		sent string
		kept bool
	}{
		{"01KAZ0J7Y3V5Q2M9W8T6R4P1N0", true},
		{"3f0c2a4e-8b1d-4c5e-9f6a-7b8c9d0e1f2a", true},
		{"not-an-id", false},
		{"3f0c2a4e-8b1d-4c5e-9f6a-7b8c9d0e1f2", false},
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/health", nil)
		req.Header.Set("X-Request-Id", tt.sent)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header.Get("X-Request-Id")
		if (got == tt.sent) != tt.kept || got == "" {
			t.Errorf("sent %q, echoed %q", tt.sent, got)
		}
		if !strings.Contains(logs.String(), `"request_id":"`+got+`"`) {
			t.Errorf("request id %s not logged", got)
		}
	}
	// The service installs the W3C propagator at start (SetupTracing).
	if _, err := telemetry.SetupTracing(context.Background(), "sync-service"); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/health", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.Contains(logs.String(), `"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"`) {
		t.Errorf("trace id not logged: %s", logs.String())
	}
}

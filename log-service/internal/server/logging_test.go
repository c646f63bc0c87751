package server_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/lurus-switch/lurus-switch/log-service/internal/server"
	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

// TestAccessLog: one JSON line per request with request id, trace id,
// route and status, and no credential in it.
func TestAccessLog(t *testing.T) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	var out testenv.LogBuffer
	e := newEnv(t, func(o *server.Options) { o.Log = telemetry.NewLogger(&out, "log-service", slog.LevelInfo) })
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodGet, e.url+"/api/v1/stats/summary", nil)
	req.Header.Set("Authorization", "Bearer "+keyUser0)
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	req.Header.Set("X-Request-Id", "01JNKQ8Z0000000000000000AB")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Request-Id") != "01JNKQ8Z0000000000000000AB" {
		t.Fatalf("request id not echoed: %q", resp.Header.Get("X-Request-Id"))
	}
	status, _ := e.call(t, http.MethodGet, "/api/v1/nope", adminToken, nil)
	if status != 404 {
		t.Fatalf("status %d", status)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one line per request, got %d:\n%s", len(lines), out.String())
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"msg": "http request", "request_id": "01JNKQ8Z0000000000000000AB", "trace_id": traceID,
		"route": "/api/v1/stats/summary", "status": float64(200), "method": "GET"} {
		if first[k] != want {
			t.Errorf("%s = %v, want %v", k, first[k], want)
		}
	}
	if !strings.Contains(lines[1], `"reason":"ROUTE_NOT_FOUND"`) || !strings.Contains(lines[1], `"route":"unmatched"`) {
		t.Errorf("404 line: %s", lines[1])
	}
	for _, secret := range []string{keyUser0, adminToken} {
		if strings.Contains(out.String(), secret) {
			t.Fatalf("credential %q in the log", secret)
		}
	}
}

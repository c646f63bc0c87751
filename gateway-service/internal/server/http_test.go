package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/service"
	"github.com/lurus-switch/lurus-switch/lurus-common/edge"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

// TestOperationalRoutes: /health and /ready are the shared edge answers,
// behind the shared request middleware, through Hertz's adaptor.
func TestOperationalRoutes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs testenv.LogBuffer
	ready := []ReadyCheck{
		{Name: "redis", Ping: func(context.Context) error { return nil }},
		{Name: "prices", Ping: func(context.Context) error { return errors.New("prices: dial tcp 10.1.2.3:18103: refused") }},
	}
	h := New(Config{Listener: ln, MaxBodyBytes: 1 << 20, ReadTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second,
		ShutdownTimeout: time.Second, Log: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))},
		service.NewRelay(service.Config{}, nil), ready, http.NotFoundHandler())
	go h.Spin()
	base := "http://" + ln.Addr().String()

	// The listener is open already: the request waits in its backlog
	// until Hertz accepts it.
	req, _ := http.NewRequest(http.MethodGet, base+"/ready", nil)
	req.Header.Set("X-Request-Id", "01JNKQ8Z0000000000000000AB")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body edge.ReadyBody
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || body.Status != "unavailable" || body.Checks["redis"] != "ok" ||
		body.Checks["prices"] != "unavailable" || body.Error == nil || body.Error.Reason != "DEPENDENCY_UNAVAILABLE" {
		t.Fatalf("ready: %d %+v", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Request-Id") != "01JNKQ8Z0000000000000000AB" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", resp.Header)
	}
	if strings.Contains(body.Error.Message, "refused") {
		t.Fatalf("the check's error reached the caller: %q", body.Error.Message)
	}
	resp, err = http.Get(base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var health edge.HealthBody
	_ = json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if resp.StatusCode != 200 || health.Status != "ok" {
		t.Fatalf("health: %d %+v", resp.StatusCode, health)
	}
	// A handler may finish its log line after the client has the answer:
	// read the log once the server has stopped.
	http.DefaultClient.CloseIdleConnections()
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, want := range []string{`"msg":"not ready","dependency":"prices"`, `"route":"/ready","path":"/ready","status":503`,
		`"request_id":"01JNKQ8Z0000000000000000AB"`, `"level":"DEBUG","msg":"request"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

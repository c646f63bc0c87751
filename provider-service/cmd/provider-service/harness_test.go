package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/provider-service/migrations"
)

// Test secrets: not dev-only values, so LURUS_ENV does not matter.
const (
	adminToken    = "test-admin-token-0123456789"
	internalToken = "test-internal-token-0123456789"
)

func testSecretKey(id string, b byte) string {
	return id + ":" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32))
}

// harness is the real wiring (newApp) on real PostgreSQL, Redis and NATS,
// served by httptest.
type harness struct {
	t    testing.TB
	URL  string
	App  *App
	PG   testenv.PostgresDB
	RD   testenv.RedisEnv
	NT   testenv.NATSEnv
	Logs *testenv.LogBuffer
	Cfg  conf.Config
}

func newHarness(t testing.TB, mutate ...func(*conf.Config)) *harness {
	t.Helper()
	h := &harness{t: t, PG: testenv.Postgres(t, migrations.FS, migrations.Dir), RD: testenv.Redis(t), NT: testenv.NATS(t), Logs: &testenv.LogBuffer{}}
	var cfg conf.Config
	cfg.SetDefaults()
	cfg.Database.URL = h.PG.URL
	cfg.Redis.Addr, cfg.Redis.Prefix = h.RD.Addr, h.RD.Prefix
	cfg.NATS.URL, cfg.NATS.Namespace = h.NT.URL, h.NT.Namespace
	cfg.Server.MaxBodyBytes = 64 << 10
	for _, m := range mutate {
		m(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h.Cfg = cfg
	log := telemetry.NewLogger(h.Logs, serviceName, telemetry.ParseLevel("debug"))
	// As serve does: installs the W3C propagator (export stays off without
	// OTEL_* settings).
	if _, err := telemetry.SetupTracing(context.Background(), serviceName); err != nil {
		t.Fatal(err)
	}
	app, cleanup, err := newApp(context.Background(), cfg, conf.Secrets{
		AdminToken: adminToken, InternalToken: internalToken, SecretKey: testSecretKey("t1", 1),
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.Server)
	t.Cleanup(func() {
		srv.Close()
		cleanup()
	})
	h.URL, h.App = srv.URL, app
	return h
}

// response is an HTTP answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Reason is the apperr reason of an error body.
func (r response) Reason() string {
	var b struct {
		Error struct{ Reason string } `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &b)
	return b.Error.Reason
}

// do sends a request with token as bearer ("" for none). body is sent as
// is when it is a string or []byte, JSON-encoded otherwise.
func (h *harness) do(method, path, token string, body any, headers ...string) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

func (h *harness) admin(method, path string, body any) response {
	h.t.Helper()
	return h.do(method, path, adminToken, body)
}

// provider is the admin JSON of a provider, as tests read it.
type provider struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	Type         string            `json:"type"`
	BaseURL      string            `json:"base_url"`
	Models       []string          `json:"models"`
	ModelMapping map[string]string `json:"model_mapping"`
	Weight       int               `json:"weight"`
	Priority     int               `json:"priority"`
	Enabled      bool              `json:"enabled"`
	Keys         []struct {
		ID      string `json:"id"`
		Masked  string `json:"masked"`
		Enabled bool   `json:"enabled"`
	} `json:"keys"`
	Timeouts        map[string]int64  `json:"timeouts"`
	Headers         map[string]string `json:"headers"`
	PassthroughOnly bool              `json:"passthrough_only"`
}

// create posts a provider and fails the test unless it is 201.
func (h *harness) create(body map[string]any) provider {
	h.t.Helper()
	r := h.admin("POST", "/api/v1/providers", body)
	if r.Status != http.StatusCreated {
		h.t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	var p provider
	r.JSON(h.t, &p)
	return p
}

// demo returns a valid create body pointing at a loopback upstream.
func demo(name string, keys ...any) map[string]any {
	if keys == nil {
		keys = []any{}
	}
	return map[string]any{
		"name": name, "type": "openai", "base_url": "http://127.0.0.1:18190/v1", "keys": keys,
		"models": []string{"gpt-4o*", "gpt-4.1"}, "allow_private_network": true,
	}
}

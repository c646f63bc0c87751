package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/eventid"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
	"github.com/lurus-switch/lurus-switch/sync-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/sync-service/internal/synctest"
)

const (
	testInternalToken = "test-internal-token"
	testOrigin        = "https://app.example"
)

// stack is a running sync-service wired by newApp against real NATS and
// Redis (fresh namespace and prefix) and a fake billing-service.
type stack struct {
	t       *testing.T
	base    string // http://host:port
	ws      string // ws://host:port/ws/sync
	nats    testenv.NATSEnv
	redis   testenv.RedisEnv
	billing *synctest.FakeBilling
	pub     *natsbus.Publisher
	logs    *testenv.LogBuffer
	stop    func()
}

func startStack(t *testing.T, mutate func(*conf.Config)) *stack {
	t.Helper()
	return startStackOn(t, testenv.NATS(t), testenv.Redis(t), mutate)
}

// startStackOn is startStack on a given NATS namespace and Redis prefix
// (the end-to-end test shares them with a real billing-service).
func startStackOn(t *testing.T, ne testenv.NATSEnv, re testenv.RedisEnv, mutate func(*conf.Config)) *stack {
	t.Helper()
	fb := synctest.NewFakeBilling(testInternalToken)
	bsrv := fb.Start()
	t.Cleanup(bsrv.Close)
	t.Setenv("LURUS_INTERNAL_TOKEN", testInternalToken)
	t.Setenv("LURUS_KEY_PEPPER", synctest.Pepper)

	var cfg conf.Config
	cfg.SetDefaults()
	cfg.Server.Addr = "127.0.0.1:0"
	cfg.NATS.URL, cfg.NATS.Namespace = ne.URL, ne.Namespace
	cfg.Redis.Addr, cfg.Redis.Prefix = re.Addr, re.Prefix
	cfg.Billing.URL = bsrv.URL
	cfg.Auth.AllowedOrigins = []string{testOrigin, "https://*.example.org"}
	cfg.WS.CloseGrace = 500 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &testenv.LogBuffer{}
	log := telemetry.NewLogger(logs, "sync-service", telemetry.ParseLevel("debug"))
	ctx, cancel := context.WithCancel(context.Background())
	app, cleanup, err := newApp(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	var once sync.Once
	s := &stack{
		t: t, nats: ne, redis: re, billing: fb, pub: natsbus.NewPublisher(ne.JS), logs: logs,
		base: "http://" + app.Addr().String(), ws: "ws://" + app.Addr().String() + "/ws/sync",
	}
	s.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("app.Run: %v", err)
			}
			cleanup()
		})
	}
	t.Cleanup(s.stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(s.base + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sync-service not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// user registers a user with a fresh valid key in the fake billing.
func (s *stack) user(userID string) (key string) {
	key = apikey.Generate()
	s.billing.AddKey(key, internalapi.VerifyKeyResponse{KeyID: "key_" + userID, UserID: userID, UserActive: true})
	s.billing.SetState(internalapi.SyncState{UserID: userID, BalanceMicros: 5_000_000, QuotaLimitTokens: 1000, QuotaUsedTokens: 10, QuotaRemainingTokens: 990})
	return key
}

// dial opens a socket with the key in Authorization; extra is added to the
// query (device_id defaults to "dev-1").
func (s *stack) dial(key string, query url.Values) *websocket.Conn {
	s.t.Helper()
	c, resp, err := s.tryDial(key, query, nil)
	if err != nil {
		s.t.Fatalf("dial: %v (%s)", err, describe(resp))
	}
	return c
}

func (s *stack) tryDial(key string, query url.Values, header http.Header) (*websocket.Conn, *http.Response, error) {
	if query == nil {
		query = url.Values{}
	}
	if query.Get("device_id") == "" {
		query.Set("device_id", "dev-1")
	}
	if header == nil {
		header = http.Header{}
	}
	if key != "" {
		header.Set("Authorization", "Bearer "+key)
	}
	c, resp, err := synctest.Dial(context.Background(), s.ws+"?"+query.Encode(), header)
	if c != nil {
		s.t.Cleanup(func() { c.Close() })
	}
	return c, resp, err
}

// ticket asks for a ticket with key from origin ("" for none).
func (s *stack) ticket(key, origin string) (int, map[string]any) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.base+"/api/v1/sync/ticket", nil)
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// publish stores a user event as billing-service would.
func (s *stack) publish(userID, typ string, data any) events.Envelope {
	s.t.Helper()
	env, err := events.NewEnvelope(eventid.New(), typ, userID, time.Now(), data)
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.pub.Publish(context.Background(), s.nats.Names.UserSubject(userID, typ), env); err != nil {
		s.t.Fatal(err)
	}
	return env
}

// metric returns the value of a sample line of /metrics ("" if absent).
func (s *stack) metric(sample string) string {
	s.t.Helper()
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	return ""
}

// waitMetric polls /metrics until sample has value want (bounded; a guard,
// not a timing assertion).
func (s *stack) waitMetric(sample, want string) {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := s.metric(sample)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s = %q, want %q", sample, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func describe(resp *http.Response) string {
	if resp == nil {
		return "no response"
	}
	raw, _ := io.ReadAll(resp.Body)
	return resp.Status + " " + string(raw)
}

// readUntil reads messages until one of type typ arrives.
func readUntil(t *testing.T, c *websocket.Conn, typ string) synctest.Message {
	t.Helper()
	for {
		m, err := synctest.Read(c, 10*time.Second)
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		if m.Type == typ {
			return m
		}
	}
}

// readEvent reads the next message and requires it to be an event.
func readEvent(t *testing.T, c *websocket.Conn) synctest.Event {
	t.Helper()
	m, err := synctest.Read(c, 10*time.Second)
	if err != nil {
		t.Fatalf("waiting for an event: %v", err)
	}
	if m.Type != "event" || m.Event == nil {
		t.Fatalf("got %+v, want an event", m)
	}
	return *m.Event
}

// send writes a raw text message.
func send(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

// closeCode reads until the connection ends and returns the close code
// (-1 when it ended without a close frame).
func closeCode(t *testing.T, c *websocket.Conn) int {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if ce, ok := err.(*websocket.CloseError); ok {
			return ce.Code
		}
		return -1
	}
}

// dialSmallBuffer connects a client whose socket receive buffer is tiny and
// which never reads.
func (s *stack) dialSmallBuffer(key, device string) *websocket.Conn {
	s.t.Helper()
	d := websocket.Dialer{
		HandshakeTimeout: 10 * time.Second,
		NetDial: func(network, addr string) (net.Conn, error) {
			c, err := net.Dial(network, addr)
			if err == nil {
				_ = c.(*net.TCPConn).SetReadBuffer(4096)
			}
			return c, err
		},
	}
	c, resp, err := d.Dial(s.ws+"?device_id="+device, http.Header{"Authorization": {"Bearer " + key}})
	if err != nil {
		s.t.Fatalf("dial: %v %s", err, describe(resp))
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

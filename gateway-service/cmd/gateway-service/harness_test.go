package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/gateway-service/internal/mockupstream"
	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
	"github.com/lurus-switch/lurus-switch/lurus-common/admission/redisstore"
	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/pricing"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

// fakeBilling answers billing-service's internal routes from memory and
// writes the admission mirror like billing would.
type fakeBilling struct {
	mu   sync.Mutex
	keys map[string]internalapi.VerifyKeyResponse
	// revoked are key ids answered 401 KEY_REVOKED.
	revoked map[string]bool
	store   *redisstore.Store
	bal     int64
	loads   int
	prices  internalapi.PriceTable
	// verifies counts key lookups (POST /internal/v1/keys/verify).
	verifies int
}

func (b *fakeBilling) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch r.URL.Path {
	case internalapi.RouteVerifyKey:
		b.verifies++
		var req internalapi.VerifyKeyRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		k, ok := b.byHash(req.KeyHash)
		if ok && b.revoked[k.KeyID] {
			w.WriteHeader(http.StatusUnauthorized)
			_, body := apperr.Render(apperr.New(apperr.ReasonKeyRevoked, "revoked"))
			_ = json.NewEncoder(w).Encode(body)
			return
		}
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			_, body := apperr.Render(apperr.New(apperr.ReasonInvalidCredentials, "unknown key"))
			_ = json.NewEncoder(w).Encode(body)
			return
		}
		_ = json.NewEncoder(w).Encode(k)
	case internalapi.RoutePrices:
		_ = json.NewEncoder(w).Encode(b.prices)
	case internalapi.RouteLoadAccount:
		var req internalapi.LoadAccountRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		b.loads++
		_, err := b.store.Apply(r.Context(), admission.Account{UserID: req.UserID, BalanceMicros: b.bal, Active: true, Version: 1}, "")
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

// testPepper is the harness's $LURUS_KEY_PEPPER.
const testPepper = "dev-only-pepper"

// byHash finds a key the way billing does: by its peppered hash, the only
// form the gateway sends.
func (b *fakeBilling) byHash(h string) (internalapi.VerifyKeyResponse, bool) {
	for k, v := range b.keys {
		if apikey.Hash(testPepper, k) == h {
			return v, true
		}
	}
	return internalapi.VerifyKeyResponse{}, false
}

// fakeProviders serves a snapshot that tests change.
type fakeProviders struct {
	mu   sync.Mutex
	snap internalapi.Snapshot
}

func (p *fakeProviders) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = json.NewEncoder(w).Encode(p.snap)
}

// harness is a gateway wired in-process against fakes of billing and
// provider-service, mock upstreams, and the real Redis and NATS.
type harness struct {
	t         testing.TB
	url       string
	billing   *fakeBilling
	providers *fakeProviders
	nats      testenv.NATSEnv
	key       string
	userID    string
	app       *App
}

// upstream is one mock provider.
type upstream struct {
	mock *mockupstream.Server
	url  string
}

func newUpstream(t testing.TB) *upstream {
	m, err := mockupstream.New(mockupstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(m)
	t.Cleanup(s.Close)
	return &upstream{mock: m, url: s.URL}
}

// provider describes a snapshot provider on mock upstream u.
func provider(id, typ string, u *upstream, prio, weight int, models ...string) internalapi.Provider {
	base := u.url
	if typ == internalapi.TypeOpenAI || typ == internalapi.TypeOpenAICompatible {
		base += "/v1"
	}
	return internalapi.Provider{ID: id, Name: id, Type: typ, BaseURL: base, Priority: prio, Weight: weight,
		Keys: []internalapi.ProviderKey{{ID: "pk_" + id, Key: "sk-upstream-" + id}}, Models: models,
		AllowPrivateNetwork: true}
}

type harnessOpt func(*conf.Config)

func startGateway(t testing.TB, providers []internalapi.Provider, opts ...harnessOpt) *harness {
	t.Helper()
	rd := testenv.Redis(t)
	ne := testenv.NATS(t)
	t.Setenv("LURUS_ENV", "dev")
	t.Setenv("LURUS_INTERNAL_TOKEN", "dev-only-internal")
	t.Setenv("LURUS_KEY_PEPPER", testPepper)

	h := &harness{t: t, nats: ne, key: apikey.Generate(), userID: "usr_test"}
	h.billing = &fakeBilling{
		keys:  map[string]internalapi.VerifyKeyResponse{h.key: {KeyID: "key_test", UserID: h.userID, UserActive: true}},
		store: redisstore.New(rd.Client, rd.Prefix), bal: 100_000_000,
		prices: internalapi.PriceTable{Version: 1, Prices: []pricing.Price{{ID: "prc_all", ModelPattern: "*",
			InputMicrosPerMTok: 1_000_000, OutputMicrosPerMTok: 2_000_000}}},
	}
	h.providers = &fakeProviders{snap: internalapi.Snapshot{Version: 1, Providers: providers}}
	bs := httptest.NewServer(h.billing)
	t.Cleanup(bs.Close)
	ps := httptest.NewServer(h.providers)
	t.Cleanup(ps.Close)

	var cfg conf.Config
	cfg.SetDefaults()
	cfg.Server.Addr = "127.0.0.1:0"
	cfg.Server.ShutdownTimeout = 10 * time.Second
	cfg.Billing.URL, cfg.Provider.URL = bs.URL, ps.URL
	cfg.Redis.Addr, cfg.Redis.Prefix = rd.Addr, rd.Prefix
	cfg.NATS.URL, cfg.NATS.Namespace = ne.URL, ne.Namespace
	cfg.Events.OutboxDir = t.TempDir()
	cfg.Log.Level = "warn"
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	app, cleanup, err := newApp(ctx, &cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	h.app = app
	if beforeRun != nil {
		beforeRun(app)
	}
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway run: %v", err)
		}
		cleanup()
	})
	h.url = "http://" + app.addr.String()
	for i := 0; ; i++ {
		resp, err := http.Get(h.url + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if i > 200 {
			t.Fatalf("gateway not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return h
}

// setSnapshot replaces the provider snapshot and tells the gateway.
func (h *harness) setSnapshot(ps ...internalapi.Provider) {
	h.providers.mu.Lock()
	h.providers.snap.Version++
	h.providers.snap.Providers = ps
	v := h.providers.snap.Version
	h.providers.mu.Unlock()
	if err := natsbus.PublishCore(h.nats.Conn, h.nats.Names.Subject(events.SubjectProviderChanged), events.ProviderChanged{Version: v}); err != nil {
		h.t.Fatal(err)
	}
	h.eventually(func() bool { return h.app.changes.Router.Snapshot().Version == v })
}

// eventually polls cond until it holds (or fails the test after 10 s).
func (h *harness) eventually(cond func() bool) {
	h.t.Helper()
	for i := 0; i < 1000; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatal("condition not met in time")
}

// do sends a request with the harness key in the header the format uses.
func (h *harness) do(method, path, body string, hdr map[string]string) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	switch {
	case strings.HasPrefix(path, "/v1beta"):
		req.Header.Set("x-goog-api-key", h.key)
	case strings.HasPrefix(path, "/v1/messages"):
		req.Header.Set("x-api-key", h.key)
		req.Header.Set("anthropic-version", "2023-06-01")
	default:
		req.Header.Set("Authorization", "Bearer "+h.key)
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

// eventsFor collects the billing.usage and log.write envelopes of a
// request id (waiting for both when wantUsage, else for the log).
func (h *harness) eventsFor(requestID string, wantUsage bool) (usage *events.Usage, logs []events.LogRecord) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	read := func(stream string) []events.Envelope {
		s, err := h.nats.JS.Stream(ctx, h.nats.Names.Stream(stream))
		if err != nil {
			h.t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			h.t.Fatal(err)
		}
		var out []events.Envelope
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				continue
			}
			envs, _ := events.ParseBody(m.Data)
			for _, env := range envs {
				if env.ID == requestID {
					out = append(out, env)
				}
			}
		}
		return out
	}
	var us, ls []events.Envelope
	defer func() {
		if h.t.Failed() {
			h.t.Logf("request %s: usage %d log %d", requestID, len(us), len(ls))
		}
	}()
	h.eventually(func() bool {
		us, ls = read(events.StreamBilling), read(events.StreamLogs)
		return len(ls) > 0 && (!wantUsage || len(us) > 0)
	})
	time.Sleep(50 * time.Millisecond) // a duplicate would have landed by now
	us, ls = read(events.StreamBilling), read(events.StreamLogs)
	if len(us) > 1 || len(ls) != 1 {
		h.t.Fatalf("request %s: %d billing.usage and %d log.write, want ≤1 and 1", requestID, len(us), len(ls))
	}
	if len(us) == 1 {
		u, err := events.DecodeData[events.Usage](us[0])
		if err != nil {
			h.t.Fatal(err)
		}
		usage = &u
	}
	l, err := events.DecodeData[events.LogRecord](ls[0])
	if err != nil {
		h.t.Fatal(err)
	}
	return usage, []events.LogRecord{l}
}

var _ = bytes.MinRead
var _ jetstream.JetStream

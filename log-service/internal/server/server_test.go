package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lurus-switch/lurus-switch/log-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/log-service/internal/logtest"
	"github.com/lurus-switch/lurus-switch/log-service/internal/metrics"
	"github.com/lurus-switch/lurus-switch/log-service/internal/server"
	"github.com/lurus-switch/lurus-switch/log-service/internal/service"
	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/keyauth"
)

const (
	adminToken    = "test-admin-token"
	internalToken = "test-internal-token"
	keyPepper     = "test-key-pepper"
	// Keys billing knows in these tests (well-formed: sk-lurus- + 40 base62).
	keyUser0    = "sk-lurus-0000000000000000000000000000000000000000"
	keyUser1    = "sk-lurus-1111111111111111111111111111111111111111"
	keyDisabled = "sk-lurus-dddddddddddddddddddddddddddddddddddddddd"
	keyUnknown  = "sk-lurus-uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu"
	keyOffice   = "sk-lurus-oooooooooooooooooooooooooooooooooooooooo" // allowed from 198.51.100.0/24 only
	keyRevoked  = "sk-lurus-rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr"
	keyExpired  = "sk-lurus-eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
)

// fakeBilling answers POST /internal/v1/keys/verify like billing-service.
type fakeBilling struct {
	srv   *httptest.Server
	calls atomic.Int32
}

func newFakeBilling(t *testing.T) *fakeBilling {
	fb := &fakeBilling{}
	expired := time.Now().Add(-time.Hour)
	keys := map[string]internalapi.VerifyKeyResponse{
		keyUser0:    {KeyID: "key_0", UserID: "usr_0", UserActive: true},
		keyUser1:    {KeyID: "key_1", UserID: "usr_1", UserActive: true},
		keyDisabled: {KeyID: "key_d", UserID: "usr_d", UserActive: false},
		keyOffice:   {KeyID: "key_o", UserID: "usr_0", UserActive: true, AllowedIPs: []string{"198.51.100.0/24"}},
		keyExpired:  {KeyID: "key_e", UserID: "usr_0", UserActive: true, ExpiresAt: &expired},
	}
	fb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fb.calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		var req internalapi.VerifyKeyRequest
		if r.URL.Path != internalapi.RouteVerifyKey || !internalapi.CheckBearer(r.Header.Get("Authorization"), internalToken) ||
			json.NewDecoder(r.Body).Decode(&req) != nil {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		var resp internalapi.VerifyKeyResponse
		ok := false
		for k, r := range keys {
			if apikey.Hash(keyPepper, k) == req.KeyHash {
				resp, ok = r, true
			}
		}
		if apikey.Hash(keyPepper, keyRevoked) == req.KeyHash {
			status, body := apperr.Render(apperr.New(apperr.ReasonKeyRevoked, "revoked"))
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(body)
			return
		}
		if !ok {
			status, body := apperr.Render(apperr.New(apperr.ReasonInvalidCredentials, "unknown key"))
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(body)
			return
		}
		_ = json.NewEncoder(w).Encode(resp)
	}))
	t.Cleanup(fb.srv.Close)
	return fb
}

// newKeys is the key cache log-service runs, asking billingURL.
func newKeys(t *testing.T, billingURL string) *keyauth.Cache {
	t.Helper()
	keys, err := keyauth.New(keyauth.Remote{Client: internalapi.NewClient(billingURL, internalToken, 2*time.Second)}, keyPepper,
		keyauth.Config{PositiveTTL: time.Minute, NegativeTTL: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// env is a log-service HTTP server on a test database.
type env struct {
	db      logtest.DB
	billing *fakeBilling
	url     string
	reg     *prometheus.Registry
}

// newEnv starts the server; opts adjust its options (checks, logger).
func newEnv(t *testing.T, opts ...func(*server.Options)) *env {
	t.Helper()
	db := logtest.ClickHouse(t)
	fb := newFakeBilling(t)
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	svc := service.New(service.Options{
		Queries:         biz.NewQueries(db.Store, biz.QueryLimits{MaxRange: 93 * 24 * time.Hour, DefaultRange: 24 * time.Hour, DefaultLimit: 100}),
		Ingester:        biz.NewIngester(db.Store),
		Keys:            newKeys(t, fb.srv.URL),
		Metrics:         m,
		AdminToken:      adminToken,
		InternalToken:   internalToken,
		MaxBatchRecords: 50,
	})
	o := server.Options{Addr: "127.0.0.1:0", Timeout: 10 * time.Second, MaxBodyBytes: 64 << 10,
		Routes: svc.Routes(), Ready: []server.Check{{Name: "clickhouse", Ping: db.Store.Ping}},
		Registry: reg, Metrics: m, Log: slog.New(slog.DiscardHandler)}
	for _, f := range opts {
		f(&o)
	}
	srv := server.NewHTTP(o)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &env{db: db, billing: fb, url: hs.URL, reg: reg}
}

// call sends a request and returns status and body; hdr are extra
// header name, value pairs.
func (e *env) call(t *testing.T, method, path, token string, body []byte, hdr ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("%s %s: no X-Request-Id", method, path)
	}
	return resp.StatusCode, raw
}

// get decodes a 200 answer into out.
func (e *env) get(t *testing.T, path, token string, out any) {
	t.Helper()
	status, raw := e.call(t, http.MethodGet, path, token, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, raw)
	}
}

// wantError checks an error answer's status and reason.
func wantError(t *testing.T, status int, raw []byte, wantStatus int, reason apperr.Reason) apperr.Body {
	t.Helper()
	var b apperr.Body
	if err := json.Unmarshal(raw, &b); err != nil || status != wantStatus || b.Error.Reason != string(reason) || b.Error.Message == "" {
		t.Fatalf("got %d %s, want %d %s", status, raw, wantStatus, reason)
	}
	return b
}

func (e *env) insert(t *testing.T, recs []biz.Record) {
	t.Helper()
	if err := e.db.Store.Insert(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

func q(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return "?" + v.Encode()
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

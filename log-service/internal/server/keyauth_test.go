package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lurus-switch/lurus-switch/log-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/log-service/internal/metrics"
	"github.com/lurus-switch/lurus-switch/log-service/internal/server"
	"github.com/lurus-switch/lurus-switch/log-service/internal/service"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/authguard"
	"github.com/lurus-switch/lurus-switch/lurus-common/clientip"
)

// emptyReader answers the summary of nothing: the key checks run before
// any query, so these tests need no ClickHouse.
type emptyReader struct{ biz.LogReader }

func (emptyReader) Summary(context.Context, biz.Filter, biz.Range) (biz.Summary, error) {
	return biz.Summary{}, nil
}

// newAuthEnv is the log-service HTTP server with the real key cache and
// fake billing, trusting proxies, with guard capping failed
// authentications (nil: none).
func newAuthEnv(t *testing.T, guard *authguard.Guard, proxies ...string) *env {
	t.Helper()
	fb := newFakeBilling(t)
	resolver, err := clientip.Parse(proxies)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	svc := service.New(service.Options{
		Queries:    biz.NewQueries(emptyReader{}, biz.QueryLimits{MaxRange: 93 * 24 * time.Hour, DefaultRange: 24 * time.Hour, DefaultLimit: 100}),
		Keys:       newKeys(t, fb.srv.URL),
		ClientIP:   resolver,
		Guard:      guard,
		Metrics:    m,
		AdminToken: adminToken, InternalToken: internalToken, MaxBatchRecords: 50,
	})
	hs := httptest.NewServer(server.NewHTTP(server.Options{Addr: "127.0.0.1:0", Timeout: 10 * time.Second, MaxBodyBytes: 64 << 10,
		Routes: svc.Routes(), Registry: reg, Metrics: m, Log: slog.New(slog.DiscardHandler)}))
	t.Cleanup(hs.Close)
	return &env{billing: fb, url: hs.URL, reg: reg}
}

// callFrom asks for the summary with key, from a client behind xff.
func (e *env) callFrom(t *testing.T, key, xff string) (int, []byte) {
	t.Helper()
	if xff == "" {
		return e.call(t, http.MethodGet, "/api/v1/stats/summary", key, nil)
	}
	return e.call(t, http.MethodGet, "/api/v1/stats/summary", key, nil, "X-Forwarded-For", xff)
}

// TestKeyAuthorizationRefusals: log-service refuses keys with the reasons
// every service gives (lurus-common/keyauth), in its own error format.
func TestKeyAuthorizationRefusals(t *testing.T) {
	e := newAuthEnv(t, nil)
	for _, tc := range []struct {
		name, key, xff string
		status         int
		reason         apperr.Reason
	}{
		{"plain key", keyUser0, "", 200, ""},
		{"address not allowed", keyOffice, "", 403, apperr.ReasonIPNotAllowed},
		{"forwarded address not believed without a trusted proxy", keyOffice, "198.51.100.7", 403, apperr.ReasonIPNotAllowed},
		{"disabled user", keyDisabled, "", 403, apperr.ReasonUserDisabled},
		{"expired key", keyExpired, "", 403, apperr.ReasonKeyExpired},
		{"revoked key", keyRevoked, "", 401, apperr.ReasonKeyRevoked},
		{"unknown key", keyUnknown, "", 401, apperr.ReasonInvalidCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := e.callFrom(t, tc.key, tc.xff)
			if tc.reason == "" {
				if status != tc.status {
					t.Fatalf("%d %s", status, raw)
				}
				return
			}
			wantError(t, status, raw, tc.status, tc.reason)
		})
	}
}

// TestKeyAuthorizationBehindTrustedProxy: with http.trusted_proxies the
// client is the right-most X-Forwarded-For entry that is not a proxy.
func TestKeyAuthorizationBehindTrustedProxy(t *testing.T) {
	e := newAuthEnv(t, nil, "127.0.0.0/8")
	if status, raw := e.callFrom(t, keyOffice, "198.51.100.7"); status != 200 {
		t.Fatalf("allowed client behind the proxy: %d %s", status, raw)
	}
	status, raw := e.callFrom(t, keyOffice, "198.51.100.7, 203.0.113.5")
	wantError(t, status, raw, 403, apperr.ReasonIPNotAllowed)
	status, raw = e.callFrom(t, keyOffice, "")
	wantError(t, status, raw, 403, apperr.ReasonIPNotAllowed)
}

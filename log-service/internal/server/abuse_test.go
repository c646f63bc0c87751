package server_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/authguard"
)

// TestAuthFailureFloodIsThrottled: random keys from one address cost
// billing exactly limit verifications; then the address gets 429
// RATE_LIMITED with Retry-After, whatever it sends (a valid key, the
// admin token), without asking billing; another address is unaffected.
func TestAuthFailureFloodIsThrottled(t *testing.T) {
	const limit = 5
	guard, err := authguard.New(authguard.Config{Limit: limit, Block: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	e := newAuthEnv(t, guard, "127.0.0.0/8")
	const attacker, neighbour, user = "203.0.113.9", "198.51.100.20", "192.0.2.44"
	before := e.billing.calls.Load()
	for i := 0; i < limit; i++ {
		status, raw := e.callFrom(t, apikey.Generate(), attacker)
		wantError(t, status, raw, 401, apperr.ReasonInvalidCredentials)
	}
	if n := e.billing.calls.Load() - before; n != limit {
		t.Fatalf("%d billing verifications for %d random keys", n, limit)
	}
	for _, tok := range []string{apikey.Generate(), keyUser0, adminToken} {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/api/v1/stats/summary", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Forwarded-For", attacker)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		if resp.StatusCode != 429 || ra < 50 || ra > 60 {
			t.Errorf("throttled address: %d Retry-After %q, want 429 with ≈ 60", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	status, raw := e.callFrom(t, apikey.Generate(), attacker)
	wantError(t, status, raw, 429, apperr.ReasonRateLimited)
	if n := e.billing.calls.Load() - before; n != limit {
		t.Errorf("a throttled address cost %d more verifications", n-limit)
	}
	status, raw = e.callFrom(t, apikey.Generate(), neighbour)
	wantError(t, status, raw, 401, apperr.ReasonInvalidCredentials)
	if status, raw := e.callFrom(t, keyUser0, user); status != 200 {
		t.Errorf("valid key from another address: %d %s", status, raw)
	}
}

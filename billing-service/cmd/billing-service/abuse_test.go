package main

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/service"
	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// countingKeys counts key lookups by hash (PostgreSQL reads).
type countingKeys struct {
	service.Keys
	lookups atomic.Int64
}

func (k *countingKeys) KeyByHash(ctx context.Context, hash string) (*biz.Key, *biz.User, error) {
	k.lookups.Add(1)
	return k.Keys.KeyByHash(ctx, hash)
}

// wantThrottled asserts a 429 RATE_LIMITED answer with a Retry-After in
// (0, max].
func wantThrottled(t *testing.T, st int, raw []byte, retryAfter string, max int) {
	t.Helper()
	ra, err := strconv.Atoi(retryAfter)
	if st != 429 || !containsReason(raw, apperr.ReasonRateLimited) || err != nil || ra < 1 || ra > max {
		t.Errorf("%d Retry-After %q %s, want 429 RATE_LIMITED with Retry-After in 1..%d", st, retryAfter, raw, max)
	}
}

func containsReason(raw []byte, r apperr.Reason) bool {
	return strings.Contains(string(raw), `"reason":"`+string(r)+`"`)
}

// getFrom sends GET path with key from client (behind the trusted proxy)
// and returns status, Retry-After and body.
func (h *harness) getFrom(path, key, client string) (int, string, []byte) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-Forwarded-For", client)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	return resp.StatusCode, resp.Header.Get("Retry-After"), buf[:n]
}

// TestAuthFailureFloodIsThrottled: random keys from one address cost
// exactly auth.failures.limit key lookups; then the address gets 429
// RATE_LIMITED with Retry-After on every user-key route, its valid key
// included, without a lookup; another address is unaffected.
func TestAuthFailureFloodIsThrottled(t *testing.T) {
	const limit = 5
	var keys *countingKeys
	h := start(t, func(c *conf.Config, a *App) {
		c.Server.TrustedProxies = []string{"127.0.0.0/8"}
		c.Auth.Failures.Limit, c.Auth.Failures.Block = limit, time.Minute
		keys = &countingKeys{Keys: a.Keys}
		a.Keys = keys
	})
	userID, _, key := h.newUser(0, nil)
	const attacker, neighbour, user = "203.0.113.9", "198.51.100.20", "192.0.2.44"
	before := keys.lookups.Load()
	for i := 0; i < limit; i++ {
		if st, _, raw := h.getFrom("/api/v1/billing/me", apikey.Generate(), attacker); st != 401 {
			t.Fatalf("wrong key %d: %d %s", i+1, st, raw)
		}
	}
	for _, path := range append(userRoutes(userID), "/api/v1/billing/me") {
		st, ra, raw := h.getFrom(path, apikey.Generate(), attacker)
		wantThrottled(t, st, raw, ra, 60)
	}
	st, ra, raw := h.getFrom("/api/v1/billing/me", key, attacker)
	wantThrottled(t, st, raw, ra, 60)
	if n := keys.lookups.Load() - before; n != limit {
		t.Errorf("%d key lookups, want %d: a throttled address was looked up", n, limit)
	}
	if st, _, raw := h.getFrom("/api/v1/billing/me", apikey.Generate(), neighbour); st != 401 {
		t.Errorf("wrong key from another address: %d %s, want 401", st, raw)
	}
	if st, _, raw := h.getFrom("/api/v1/billing/me", key, user); st != 200 {
		t.Errorf("valid key from another address: %d %s", st, raw)
	}
	if v := h.metric(`billing_rate_limited_total{kind="auth_failures",scope="ip"}`); v != 5 {
		t.Errorf("billing_rate_limited_total{ip,auth_failures} = %v, want 5", v)
	}
}

// TestSSEStreamsPerUserCapped: past sse.max_per_user open streams a user
// gets 429 RATE_LIMITED; another user is unaffected; closing a stream
// frees its slot.
func TestSSEStreamsPerUserCapped(t *testing.T) {
	h := start(t, func(c *conf.Config, _ *App) { c.SSE.MaxPerUser = 2 })
	userID, _, key := h.newUser(0, nil)
	otherID, _, otherKey := h.newUser(0, nil)
	url := func(id string) string { return h.base + "/api/v1/billing/sync/" + id + "/stream" }
	ctx1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	for _, ctx := range []context.Context{ctx1, ctx2} {
		if _, st := sseClient(t, ctx, url(userID), key, ""); st != 200 {
			t.Fatalf("stream within the cap: %d", st)
		}
	}
	st, ra, raw := h.getFrom("/api/v1/billing/sync/"+userID+"/stream", key, "127.0.0.1")
	wantThrottled(t, st, raw, ra, 1)
	ctx3, cancel3 := context.WithCancel(context.Background())
	defer cancel3()
	if _, st := sseClient(t, ctx3, url(otherID), otherKey, ""); st != 200 {
		t.Errorf("another user's stream: %d", st)
	}
	if v := h.metric(`billing_rate_limited_total{kind="sse_streams",scope="user"}`); v != 1 {
		t.Errorf("billing_rate_limited_total{user,sse_streams} = %v, want 1", v)
	}
	cancel1()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithCancel(context.Background())
		_, st := sseClient(t, ctx, url(userID), key, "")
		cancel()
		if st == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("closing a stream did not free its slot: %d", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

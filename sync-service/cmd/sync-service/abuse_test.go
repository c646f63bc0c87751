package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"

	"github.com/lurus-switch/lurus-switch/sync-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/sync-service/internal/service"
)

// closeOf reads until c ends and returns its close code and reason.
func closeOf(t *testing.T, c *websocket.Conn) (int, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if ce, ok := err.(*websocket.CloseError); ok {
			return ce.Code, ce.Text
		}
		return -1, err.Error()
	}
}

// TestWebSocketsPerUserCapped: a user's 21st socket (ws.max_per_user 20,
// the default) is accepted and closed at once with 4029 "too many
// connections for this user"; the 20 others keep receiving events;
// another user is unaffected; closing one frees a slot.
func TestWebSocketsPerUserCapped(t *testing.T) {
	s := startStack(t, nil)
	key, otherKey := s.user("usr_many"), s.user("usr_other")
	var open []*websocket.Conn
	for i := 0; i < 20; i++ {
		open = append(open, s.dial(key, url.Values{"device_id": {fmt.Sprintf("dev-%d", i)}}))
	}
	s.waitMetric("lurus_sync_connections", "20")
	extra := s.dial(key, url.Values{"device_id": {"dev-21"}})
	if code, reason := closeOf(t, extra); code != service.CloseTooManyConnections || reason != "too many connections for this user" {
		t.Fatalf("21st socket closed with %d %q, want %d %q", code, reason, service.CloseTooManyConnections, "too many connections for this user")
	}
	if got := s.metric(`lurus_sync_rate_limited_total{kind="ws_connections",scope="user"}`); got != "1" {
		t.Errorf("lurus_sync_rate_limited_total{user,ws_connections} = %q, want 1", got)
	}
	other := s.dial(otherKey, nil)
	s.waitMetric("lurus_sync_connections", "21")

	sent := s.publish("usr_many", events.TypeBalanceChanged, events.BalanceChanged{BalanceMicros: 1})
	for i, c := range open {
		if e := readEvent(t, c); e.ID != sent.ID {
			t.Fatalf("socket %d got %s, want %s", i, e.ID, sent.ID)
		}
	}
	theirs := s.publish("usr_other", events.TypeBalanceChanged, events.BalanceChanged{BalanceMicros: 2})
	if e := readEvent(t, other); e.ID != theirs.ID {
		t.Fatalf("other user got %s", e.ID)
	}

	_ = open[0].WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	_ = open[0].Close()
	s.waitMetric("lurus_sync_connections", "20")
	again := s.dial(key, url.Values{"device_id": {"dev-again"}})
	s.waitMetric("lurus_sync_connections", "21")
	next := s.publish("usr_many", events.TypeBalanceChanged, events.BalanceChanged{BalanceMicros: 3})
	if e := readEvent(t, again); e.ID != next.ID {
		t.Fatalf("socket in the freed slot got %s, want %s", e.ID, next.ID)
	}
}

// TestWebSocketsPerAddressCapped: past ws.max_per_ip sockets from one
// client address (of any users), the next is closed with 4029 "too many
// connections from this address"; another address is unaffected.
func TestWebSocketsPerAddressCapped(t *testing.T) {
	s := startStack(t, func(c *conf.Config) {
		c.Server.TrustedProxies = []string{"127.0.0.0/8"}
		c.WS.MaxPerIP = 3
	})
	from := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }
	for i := 0; i < 3; i++ {
		if _, resp, err := s.tryDial(s.user(fmt.Sprintf("usr_%d", i)), nil, from("203.0.113.9")); err != nil {
			t.Fatalf("socket %d: %v %s", i, err, describe(resp))
		}
	}
	c, resp, err := s.tryDial(s.user("usr_3"), nil, from("203.0.113.9"))
	if err != nil {
		t.Fatalf("4th socket: %v %s", err, describe(resp))
	}
	if code, reason := closeOf(t, c); code != service.CloseTooManyConnections || reason != "too many connections from this address" {
		t.Fatalf("4th socket from one address closed with %d %q", code, reason)
	}
	if _, resp, err := s.tryDial(s.user("usr_4"), nil, from("198.51.100.20")); err != nil {
		t.Fatalf("socket from another address: %v %s", err, describe(resp))
	}
	s.waitMetric("lurus_sync_connections", "4")
}

// TestAuthFailureFloodIsThrottled: wrong keys and tickets from one
// address cost billing at most auth.failures.limit verifications; then
// the address gets 429 RATE_LIMITED with Retry-After on the ticket route
// and on the upgrade, its valid key included; another address is
// unaffected.
func TestAuthFailureFloodIsThrottled(t *testing.T) {
	const limit = 6
	s := startStack(t, func(c *conf.Config) {
		c.Server.TrustedProxies = []string{"127.0.0.0/8"}
		c.Auth.Failures.Limit, c.Auth.Failures.Block = limit, time.Minute
	})
	key := s.user("usr_ok")
	const attacker, neighbour, user = "203.0.113.9", "198.51.100.20", "192.0.2.44"
	ticketFrom := func(key, ip string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.base+"/api/v1/sync/ticket", nil)
		req.Header.Set("x-api-key", key)
		req.Header.Set("X-Forwarded-For", ip)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	before := s.billing.Verifies.Load()
	for i := 0; i < limit/3; i++ {
		if resp := ticketFrom(apikey.Generate(), attacker); resp.StatusCode != 401 {
			t.Fatalf("wrong key on the ticket route: %d", resp.StatusCode)
		}
		if _, resp, err := s.tryDial(apikey.Generate(), nil, http.Header{"X-Forwarded-For": {attacker}}); err == nil || resp.StatusCode != 401 {
			t.Fatalf("wrong key on the upgrade: %v %s", err, describe(resp))
		}
		_, resp, err := s.tryDial("", url.Values{"ticket": {"not-a-ticket"}}, http.Header{"X-Forwarded-For": {attacker}, "Origin": {testOrigin}})
		if err == nil || refusalReason(resp) != string(apperr.ReasonInvalidTicket) {
			t.Fatalf("wrong ticket: %v %s", err, describe(resp))
		}
	}
	if n := s.billing.Verifies.Load() - before; n != 2*limit/3 {
		t.Fatalf("%d billing verifications for %d random keys", n, 2*limit/3)
	}
	wantThrottled := func(what string, resp *http.Response) {
		t.Helper()
		ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		if resp.StatusCode != 429 || ra < 50 || ra > 60 {
			t.Errorf("%s: %d Retry-After %q, want 429 with ≈ 60", what, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	wantThrottled("ticket, wrong key", ticketFrom(apikey.Generate(), attacker))
	wantThrottled("ticket, valid key", ticketFrom(key, attacker))
	_, resp, err := s.tryDial(key, nil, http.Header{"X-Forwarded-For": {attacker}})
	if err == nil {
		t.Fatal("a throttled address opened a socket")
	}
	if refusalReason(resp) != string(apperr.ReasonRateLimited) {
		t.Errorf("upgrade refusal reason %q", refusalReason(resp))
	}
	wantThrottled("upgrade, valid key", resp)
	if n := s.billing.Verifies.Load() - before; n != 2*limit/3 {
		t.Errorf("a throttled address cost %d more verifications", n-2*limit/3)
	}
	if resp := ticketFrom(apikey.Generate(), neighbour); resp.StatusCode != 401 {
		t.Errorf("wrong key from another address: %d, want 401", resp.StatusCode)
	}
	if resp := ticketFrom(key, user); resp.StatusCode != 201 {
		t.Errorf("valid key from another address: %d", resp.StatusCode)
	}
	if got := s.metric(`lurus_sync_rate_limited_total{kind="auth_failures",scope="ip"}`); got != "3" {
		t.Errorf("lurus_sync_rate_limited_total{ip,auth_failures} = %q, want 3", got)
	}
}

package main

import (
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// TestAuthFailureFloodIsThrottled: a flood of wrong keys from one client
// address costs billing exactly auth.failures.limit lookups; from then on
// the address gets 429 RATE_LIMITED with Retry-After in the caller's
// format, whatever key it sends, while another address (with a wrong key
// or the valid one) is served as before.
func TestAuthFailureFloodIsThrottled(t *testing.T) {
	const limit = 5
	oa := newUpstream(t)
	h := startGateway(t, []internalapi.Provider{provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o")},
		func(c *conf.Config) {
			c.Server.TrustedProxies = []string{"127.0.0.0/8"}
			c.Auth.Failures.Limit, c.Auth.Failures.Window, c.Auth.Failures.Block = limit, time.Minute, 2*time.Minute
		})
	verifies := func() int { h.billing.mu.Lock(); defer h.billing.mu.Unlock(); return h.billing.verifies }
	const attacker, neighbour, user = "203.0.113.9", "198.51.100.20", "192.0.2.44"
	chat := `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`
	from := func(ip, key string) map[string]string {
		return map[string]string{"X-Forwarded-For": ip, "Authorization": "Bearer " + key}
	}

	before := verifies()
	for i := 0; i < limit; i++ {
		resp, body := h.do(http.MethodPost, "/v1/chat/completions", chat, from(attacker, apikey.Generate()))
		if resp.StatusCode != 401 || gjson.GetBytes(body, "error.code").Str != "INVALID_CREDENTIALS" {
			t.Fatalf("wrong key %d: %d %s", i+1, resp.StatusCode, body)
		}
	}
	if n := verifies() - before; n != limit {
		t.Fatalf("%d billing lookups for %d random keys", n, limit)
	}

	// Throttled: every format answers in its own shape, the valid key too,
	// and billing is asked nothing more.
	for _, c := range []struct {
		name, method, path, body string
		hdr                      map[string]string
		check                    func(body []byte) bool
	}{
		{"openai", http.MethodPost, "/v1/chat/completions", chat, from(attacker, apikey.Generate()), func(b []byte) bool {
			return gjson.GetBytes(b, "error.type").Str == "rate_limit_exceeded" && gjson.GetBytes(b, "error.code").Str == "RATE_LIMITED"
		}},
		{"openai with the valid key", http.MethodPost, "/v1/chat/completions", chat, from(attacker, h.key), func(b []byte) bool {
			return gjson.GetBytes(b, "error.code").Str == "RATE_LIMITED"
		}},
		{"anthropic", http.MethodPost, "/v1/messages", `{"model":"gpt-4o","max_tokens":8,"messages":[]}`,
			map[string]string{"X-Forwarded-For": attacker, "x-api-key": apikey.Generate()}, func(b []byte) bool {
				return gjson.GetBytes(b, "type").Str == "error" && gjson.GetBytes(b, "error.type").Str == "rate_limit_error"
			}},
		{"gemini", http.MethodPost, "/v1beta/models/gpt-4o:generateContent", `{"contents":[]}`,
			map[string]string{"X-Forwarded-For": attacker, "x-goog-api-key": apikey.Generate()}, func(b []byte) bool {
				return gjson.GetBytes(b, "error.status").Str == "RESOURCE_EXHAUSTED" && gjson.GetBytes(b, "error.code").Int() == 429
			}},
		{"model list", http.MethodGet, "/v1/models", "", from(attacker, apikey.Generate()), func(b []byte) bool {
			return gjson.GetBytes(b, "error.code").Str == "RATE_LIMITED"
		}},
		{"no key at all", http.MethodPost, "/v1/chat/completions", chat, map[string]string{"X-Forwarded-For": attacker, "Authorization": ""},
			func(b []byte) bool { return gjson.GetBytes(b, "error.code").Str == "RATE_LIMITED" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := h.do(c.method, c.path, c.body, c.hdr)
			ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			if resp.StatusCode != 429 || !c.check(body) || ra < 110 || ra > 120 {
				t.Errorf("%d Retry-After %q %s, want 429 RATE_LIMITED, Retry-After ≈ 120", resp.StatusCode, resp.Header.Get("Retry-After"), body)
			}
		})
	}
	if n := verifies() - before; n != limit {
		t.Errorf("a throttled address cost %d more billing lookups", n-limit)
	}

	// Another address is judged on its own: a wrong key is a plain 401,
	// the valid key works.
	if resp, body := h.do(http.MethodPost, "/v1/chat/completions", chat, from(neighbour, apikey.Generate())); resp.StatusCode != 401 {
		t.Errorf("wrong key from another address: %d %s, want 401", resp.StatusCode, body)
	}
	if resp, body := h.do(http.MethodPost, "/v1/chat/completions", chat, from(user, h.key)); resp.StatusCode != 200 {
		t.Errorf("valid key from another address: %d %s", resp.StatusCode, body)
	}
	m := regexp.MustCompile(`lurus_gateway_rate_limited_total\{kind="auth_failures",scope="ip"\} (\d+)`).FindStringSubmatch(h.metrics())
	if m == nil || m[1] != "6" {
		t.Errorf("lurus_gateway_rate_limited_total{scope=ip,kind=auth_failures} = %v, want 6", m)
	}
}

package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/gateway-service/internal/mockupstream"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

func ptr[T any](v T) *T { return &v }

// failing makes every request to u answer status before the first byte,
// via the scenario the provider names in its headers.
func failing(t *testing.T, u *upstream, p *internalapi.Provider, status int) {
	t.Helper()
	if err := u.mock.SetScenario("s", mockupstream.Settings{Status: ptr(status)}); err != nil {
		t.Fatal(err)
	}
	p.Headers = map[string]string{"X-Mock-Scenario": "s"}
}

const chatBody = `{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}`

func TestFailoverSkips5xxBeforeFirstByte(t *testing.T) {
	bad, good := newUpstream(t), newUpstream(t)
	pb := provider("prv_bad", internalapi.TypeOpenAI, bad, 10, 1, "gpt-4o")
	failing(t, bad, &pb, 503)
	pg := provider("prv_good", internalapi.TypeOpenAI, good, 0, 1, "gpt-4o")
	h := startGateway(t, []internalapi.Provider{pb, pg})

	resp, body := h.do(http.MethodPost, "/v1/chat/completions", chatBody, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	if got := bad.mock.Stats().Total; got != 1 {
		t.Errorf("failing provider saw %d requests, want 1", got)
	}
	if got := good.mock.Stats().Total; got != 1 {
		t.Errorf("healthy provider saw %d requests, want 1", got)
	}
	u, logs := h.eventsFor(resp.Header.Get("X-Request-Id"), true)
	if logs[0].Attempts != 2 || u.ProviderID != "prv_good" || u.Status != "ok" {
		t.Errorf("attempts %d provider %s status %s", logs[0].Attempts, u.ProviderID, u.Status)
	}

	// Every candidate failing: 502 in the caller's format, and billing
	// still gets the usage event (to release the reservation).
	pg2 := pg
	failing(t, good, &pg2, 500)
	h.setSnapshot(pb, pg2)
	resp, body = h.do(http.MethodPost, "/v1/chat/completions", chatBody, nil)
	if resp.StatusCode != http.StatusBadGateway || gjson.GetBytes(body, "error.code").Str != "UPSTREAM_ERROR" {
		t.Fatalf("all failing: %d %s", resp.StatusCode, body)
	}
	u, _ = h.eventsFor(resp.Header.Get("X-Request-Id"), true)
	if u.Status != "upstream_error" || u.PromptTokens != 0 || u.UsageSource != "none" {
		t.Errorf("usage of a failed request %+v", u)
	}

	// Every candidate saying 429: the 429 passes through.
	failing(t, bad, &pb, 429)
	failing(t, good, &pg2, 429)
	h.setSnapshot(pb, pg2)
	// An Anthropic client reaches the OpenAI providers by translation:
	// their 429 reaches it in Anthropic's error format.
	resp, body = h.do(http.MethodPost, "/v1/messages", `{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`, nil)
	if resp.StatusCode != http.StatusTooManyRequests || gjson.GetBytes(body, "type").Str != "error" ||
		gjson.GetBytes(body, "error.type").Str != "rate_limit_error" {
		t.Fatalf("all 429 to a translated client: %d %s", resp.StatusCode, body)
	}
	resp, body = h.do(http.MethodPost, "/v1/chat/completions", chatBody, nil)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("all 429: %d %s", resp.StatusCode, body)
	}
}

func TestStreamCutAfterFirstByteIsNotRetried(t *testing.T) {
	cut, other := newUpstream(t), newUpstream(t)
	pc := provider("prv_cut", internalapi.TypeOpenAI, cut, 10, 1, "gpt-4o")
	if err := cut.mock.SetScenario("s", mockupstream.Settings{CutAfter: ptr(2)}); err != nil {
		t.Fatal(err)
	}
	pc.Headers = map[string]string{"X-Mock-Scenario": "s"}
	h := startGateway(t, []internalapi.Provider{pc, provider("prv_other", internalapi.TypeOpenAI, other, 0, 1, "gpt-4o")})

	resp, body := h.do(http.MethodPost, "/v1/chat/completions",
		`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"one two"}]}`, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	s := string(body)
	if got := streamText(s, "choices.0.delta.content"); got != mockupstream.ChunkText(0)+mockupstream.ChunkText(1) {
		t.Errorf("delivered %q", got)
	}
	if !strings.Contains(s, `"code":"UPSTREAM_ERROR"`) || !strings.HasSuffix(s, "data: [DONE]\n\n") {
		t.Errorf("stream does not end with an error chunk and [DONE]: %q", s)
	}
	if other.mock.Stats().Total != 0 {
		t.Error("a stream cut after the first byte was retried")
	}
	u, logs := h.eventsFor(resp.Header.Get("X-Request-Id"), true)
	if u.Status != "upstream_error" || u.UsageSource != "estimated" || u.CompletionTokens == 0 || u.PromptTokens == 0 {
		t.Errorf("usage of a cut stream %+v", u)
	}
	if logs[0].Attempts != 1 {
		t.Errorf("attempts %d", logs[0].Attempts)
	}
}

func TestBreakerOpensAndRecovers(t *testing.T) {
	flaky, backup := newUpstream(t), newUpstream(t)
	pf := provider("prv_flaky", internalapi.TypeOpenAI, flaky, 10, 1, "gpt-4o")
	failing(t, flaky, &pf, 500)
	h := startGateway(t, []internalapi.Provider{pf, provider("prv_backup", internalapi.TypeOpenAI, backup, 0, 1, "gpt-4o")},
		func(c *conf.Config) {
			c.Breaker.ConsecutiveFailures = 3
			c.Breaker.FailureRate = 0
			c.Breaker.Cooldown = 200 * time.Millisecond
			c.Relay.RetryBurst = 100
		})
	for i := 0; i < 10; i++ {
		if resp, body := h.do(http.MethodPost, "/v1/chat/completions", chatBody, nil); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if got := flaky.mock.Stats().Total; got != 3 {
		t.Fatalf("flaky provider saw %d requests; the breaker should have opened after 3", got)
	}
	if !strings.Contains(h.metrics(), `lurus_gateway_breaker_state{key="pk_prv_flaky",provider="prv_flaky"} 1`) {
		t.Error("breaker state metric not open")
	}
	// The provider heals; after the cool-down one probe closes the breaker
	// and traffic returns to the higher priority.
	if err := flaky.mock.SetScenario("s", mockupstream.Settings{Status: ptr(200)}); err != nil {
		t.Fatal(err)
	}
	h.eventually(func() bool {
		h.do(http.MethodPost, "/v1/chat/completions", chatBody, nil)
		return flaky.mock.Stats().ByPath["/v1/chat/completions"]["200"] >= 1
	})
	before := backup.mock.Stats().Total
	for i := 0; i < 5; i++ {
		h.do(http.MethodPost, "/v1/chat/completions", chatBody, nil)
	}
	if backup.mock.Stats().Total != before {
		t.Error("traffic did not return to the recovered provider")
	}
	if !strings.Contains(h.metrics(), `lurus_gateway_breaker_state{key="pk_prv_flaky",provider="prv_flaky"} 0`) {
		t.Error("breaker state metric not closed")
	}
}

func TestRetryBudgetHoldsUnderPersistentFailure(t *testing.T) {
	var ups []*upstream
	var ps []internalapi.Provider
	for i, id := range []string{"prv_a", "prv_b", "prv_c"} {
		u := newUpstream(t)
		p := provider(id, internalapi.TypeOpenAI, u, 10-i, 1, "gpt-4o")
		failing(t, u, &p, 500)
		ups, ps = append(ups, u), append(ps, p)
	}
	const burst, requests = 2, 100
	h := startGateway(t, ps, func(c *conf.Config) {
		c.Breaker.ConsecutiveFailures = 1 << 30 // keep every key in play: only the budget limits
		c.Breaker.FailureRate = 0
		c.Relay.RetryBurst = burst
	})
	for i := 0; i < requests; i++ {
		if resp, _ := h.do(http.MethodPost, "/v1/chat/completions", chatBody, nil); resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
	var attempts int64
	for _, u := range ups {
		attempts += u.mock.Stats().Total
	}
	if limit := int64(1.2*requests) + burst; attempts > limit || attempts < requests {
		t.Fatalf("%d upstream attempts for %d requests; budget allows at most %d", attempts, requests, limit)
	}
}

// metrics returns the gateway's /metrics text.
func (h *harness) metrics() string {
	resp, body := h.do(http.MethodGet, "/metrics", "", nil)
	if resp.StatusCode != 200 {
		h.t.Fatalf("metrics: %d", resp.StatusCode)
	}
	return string(body)
}

func TestUpstreamClientErrorPassesThrough(t *testing.T) {
	up := newUpstream(t)
	p := provider("prv_oa", internalapi.TypeOpenAI, up, 0, 1, "gpt-4o")
	failing(t, up, &p, 400)
	other := newUpstream(t)
	h := startGateway(t, []internalapi.Provider{p, provider("prv_other", internalapi.TypeOpenAI, other, -1, 1, "gpt-4o")})
	resp, body := h.do(http.MethodPost, "/v1/chat/completions", chatBody, nil)
	if resp.StatusCode != http.StatusBadRequest || other.mock.Stats().Total != 0 {
		t.Fatalf("a 400 from upstream must pass through without failover: %d %s", resp.StatusCode, body)
	}
	u, _ := h.eventsFor(resp.Header.Get("X-Request-Id"), true)
	if u.Status != "rejected" || u.UsageSource != "none" {
		t.Errorf("usage %+v", u)
	}
}

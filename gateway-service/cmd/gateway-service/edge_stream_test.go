package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/mockupstream"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// ignoringCap is a mock scenario of an upstream that ignores the output
// cap: it would stream 100,000 chunks, one every millisecond (100 s).
func ignoringCap(t *testing.T, u *upstream, p *internalapi.Provider) {
	t.Helper()
	if err := u.mock.SetScenario("nocap", mockupstream.Settings{Chunks: ptr(100_000), GapMs: ptr(1)}); err != nil {
		t.Fatal(err)
	}
	p.Headers = map[string]string{"X-Mock-Scenario": "nocap"}
}

// TestStreamCutAtHeldOutput: an upstream streams far past the cap it was
// told. The gateway ends each format's stream with its max-tokens
// terminal event once the output held (50 tokens) is delivered, closes
// upstream at once, bills prompt + delivered output, and counts the cut.
func TestStreamCutAtHeldOutput(t *testing.T) {
	oa, an, ge := newUpstream(t), newUpstream(t), newUpstream(t)
	po := provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o")
	pa := provider("prv_an", internalapi.TypeAnthropic, an, 0, 1, "claude-*")
	pg := provider("prv_ge", internalapi.TypeGemini, ge, 0, 1, "gemini-2.5-flash")
	ignoringCap(t, oa, &po)
	ignoringCap(t, an, &pa)
	ignoringCap(t, ge, &pg)
	h := startGateway(t, []internalapi.Provider{po, pa, pg})
	const held = 50
	cases := []struct {
		name, path, body, textPath, provider string
		u                                    *upstream
		end                                  func(body string) bool
		promptFromUpstream                   bool
	}{
		{name: "openai chat", path: "/v1/chat/completions", provider: "prv_oa", u: oa,
			body:     `{"model":"gpt-4o","stream":true,"max_tokens":50,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"count"}]}`,
			textPath: "choices.0.delta.content",
			end: func(b string) bool {
				return strings.Contains(b, `"finish_reason":"length"`) && strings.Contains(b, `"completion_tokens":`) && strings.HasSuffix(b, "data: [DONE]\n\n")
			}},
		{name: "anthropic", path: "/v1/messages", provider: "prv_an", u: an, promptFromUpstream: true,
			body:     `{"model":"claude-sonnet-4-5","stream":true,"max_tokens":50,"messages":[{"role":"user","content":"count"}]}`,
			textPath: "delta.text",
			end: func(b string) bool {
				return strings.Contains(b, `"stop_reason":"max_tokens"`) &&
					strings.HasSuffix(b, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
			}},
		{name: "gemini sse", path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", provider: "prv_ge", u: ge,
			promptFromUpstream: true,
			body:               `{"contents":[{"role":"user","parts":[{"text":"count"}]}],"generationConfig":{"maxOutputTokens":50}}`,
			textPath:           "candidates.0.content.parts.0.text",
			end: func(b string) bool {
				return strings.Contains(b, `"finishReason":"MAX_TOKENS"`) && strings.HasSuffix(b, "\r\n\r\n")
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t0 := time.Now()
			resp, body := h.do(http.MethodPost, c.path, c.body, nil)
			took := time.Since(t0)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d %s", resp.StatusCode, body)
			}
			s := string(body)
			if !c.end(s) {
				t.Errorf("stream does not end with the max-tokens terminal: %q", s[max(0, len(s)-600):])
			}
			text := streamText(s, c.textPath)
			if text == "" || !strings.HasPrefix(mockupstream.ReplyText(1000), text) || len(text) > 4*held {
				t.Errorf("delivered %d bytes %q", len(text), text[:min(len(text), 80)])
			}
			if took > 20*time.Second {
				t.Errorf("the cut stream took %v: upstream was drained", took)
			}
			// Upstream was closed, not read to its end: the mock's stream
			// ends (its next write fails) long before its 100 s.
			h.eventually(func() bool { return c.u.mock.Stats().InFlight == 0 })
			u, _ := h.eventsFor(resp.Header.Get("X-Request-Id"), true)
			if u.CompletionTokens <= 0 || u.CompletionTokens > held || u.PromptTokens <= 0 || u.Status != "ok" {
				t.Errorf("billed %+v, want 0 < completion <= %d", u, held)
			}
			wantSource := "estimated"
			if c.promptFromUpstream {
				wantSource = "upstream"
			}
			if u.UsageSource != wantSource {
				t.Errorf("usage_source %q, want %q", u.UsageSource, wantSource)
			}
			if c.name == "openai chat" {
				if got := lastUsage(s); got != u.CompletionTokens {
					t.Errorf("the client's usage chunk says %d completion tokens, billed %d", got, u.CompletionTokens)
				}
			}
			if !strings.Contains(h.metrics(), `lurus_gateway_output_cap_enforced_total{provider="`+c.provider+`"} 1`) {
				t.Errorf("cut not counted for %s", c.provider)
			}
		})
	}
}

// lastUsage returns completion_tokens of the last usage chunk of an
// OpenAI stream.
func lastUsage(stream string) int64 {
	var n int64
	for _, line := range strings.Split(stream, "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			if r := gjson.Get(d, "usage.completion_tokens"); r.Exists() {
				n = r.Int()
			}
		}
	}
	return n
}

// TestUsageOverHoldBilledAndCounted: a non-streamed answer whose reported
// output exceeds the cap that was held is billed in full and counted
// against the provider.
func TestUsageOverHoldBilledAndCounted(t *testing.T) {
	oa := newUpstream(t)
	p := provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o")
	p.Headers = map[string]string{mockupstream.HeaderChunks: "40"}
	h := startGateway(t, []internalapi.Provider{p})
	resp, body := h.do(http.MethodPost, "/v1/chat/completions",
		`{"model":"gpt-4o","max_tokens":3,"messages":[{"role":"user","content":"count"}]}`, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	u, _ := h.eventsFor(resp.Header.Get("X-Request-Id"), true)
	if u.CompletionTokens != 40 || u.UsageSource != "upstream" {
		t.Errorf("billed %+v, want upstream's 40 completion tokens", u)
	}
	if !strings.Contains(h.metrics(), `lurus_gateway_usage_over_hold_total{provider="prv_oa"} 1`) {
		t.Error("usage over the hold not counted")
	}
}

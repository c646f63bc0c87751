package main

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// TestDuplicateModelRefusedInEachFormat: a body naming an allowed cheap
// model first and an expensive one last is refused with 400
// DUPLICATE_KEY in the caller's format, before anything is held or sent
// upstream (a last-key-wins upstream would have run the expensive one).
func TestDuplicateModelRefusedInEachFormat(t *testing.T) {
	oa, an, ge := newUpstream(t), newUpstream(t), newUpstream(t)
	h := startGateway(t, []internalapi.Provider{
		provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o-mini", "o3"),
		provider("prv_an", internalapi.TypeAnthropic, an, 0, 1, "claude-*"),
		provider("prv_ge", internalapi.TypeGemini, ge, 0, 1, "gemini-*"),
	})
	k := h.billing.keys[h.key]
	k.Models = []string{"gpt-4o-mini", "claude-3-5-haiku*", "gemini-2.0-flash"}
	h.billing.keys[h.key] = k
	cases := []struct {
		path, body, reasonPath string
	}{
		{"/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"model":"o3"}`, "error.code"},
		{"/v1/chat/completions", `{"model":"gpt-4o-mini","mod\u0065l":"o3","messages":[]}`, "error.code"},
		{"/v1/messages", `{"model":"claude-3-5-haiku-latest","max_tokens":5,"messages":[],"model":"claude-opus-4"}`, "error.reason"},
		{"/v1beta/models/gemini-2.0-flash:generateContent", `{"generationConfig":{"maxOutputTokens":5,"maxOutputTokens":65536},"contents":[]}`, "error.details.0.reason"},
	}
	for _, c := range cases {
		resp, body := h.do(http.MethodPost, c.path, c.body, nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", c.body, resp.StatusCode, body)
		}
		if got := gjson.GetBytes(body, c.reasonPath).Str; got != "DUPLICATE_KEY" {
			t.Errorf("%s: %s = %q, want DUPLICATE_KEY in the caller's format: %s", c.path, c.reasonPath, got, body)
		}
	}
	for _, u := range []*upstream{oa, an, ge} {
		if n := len(u.mock.Requests(0)); n != 0 {
			t.Fatalf("upstream saw %d requests", n)
		}
	}
}

// TestUpstreamIsToldTheHeldCap: whatever the client sent, upstream gets an
// output cap in the field its endpoint honours, and the hold (the
// billing.usage reserved tokens) prices exactly that cap × n.
func TestUpstreamIsToldTheHeldCap(t *testing.T) {
	oa, compat, an, ge := newUpstream(t), newUpstream(t), newUpstream(t), newUpstream(t)
	h := startGateway(t, []internalapi.Provider{
		provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o", "gpt-3.5-turbo-instruct"),
		provider("prv_cp", internalapi.TypeOpenAICompatible, compat, 0, 1, "llama3:8b"),
		provider("prv_an", internalapi.TypeAnthropic, an, 0, 1, "claude-*"),
		provider("prv_ge", internalapi.TypeGemini, ge, 0, 1, "gemini-*"),
	}, func(c *conf.Config) {
		c.Estimate.ModelMaxOutputTokens = map[string]int64{"gpt-4o*": 16384, "claude-3-5-sonnet*": 8192, "gemini-2.5-pro*": 65536}
	})
	cases := []struct {
		name     string
		up       *upstream
		path     string
		body     string
		field    string
		cap, out int64 // cap upstream is told, output tokens held
	}{
		{"chat without cap", oa, "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`,
			"max_completion_tokens", 16384, 16384},
		{"chat with only max_output_tokens", oa, "/v1/chat/completions", `{"model":"gpt-4o","max_output_tokens":1,"stream":true,"messages":[{"role":"user","content":"hi"}]}`,
			"max_completion_tokens", 16384, 16384},
		{"chat max_tokens over the limit, n=2", oa, "/v1/chat/completions", `{"model":"gpt-4o","max_tokens":1000000,"n":2,"messages":[{"role":"user","content":"hi"}]}`,
			"max_tokens", 16384, 32768},
		{"compatible provider gets max_tokens", compat, "/v1/chat/completions", `{"model":"llama3:8b","messages":[{"role":"user","content":"hi"}]}`,
			"max_tokens", 4096, 4096},
		{"completions default", oa, "/v1/completions", `{"model":"gpt-3.5-turbo-instruct","prompt":"hi","best_of":3}`,
			"max_tokens", 16, 48},
		{"anthropic", an, "/v1/messages", `{"model":"claude-3-5-sonnet-latest","max_tokens":100000,"messages":[{"role":"user","content":"hi"}]}`,
			"max_tokens", 8192, 8192},
		{"gemini", ge, "/v1beta/models/gemini-2.5-pro:generateContent", `{"contents":[{"parts":[{"text":"hi"}]}],"generationConfig":{"candidateCount":2}}`,
			"generationConfig.maxOutputTokens", 65536, 131072},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := h.do(http.MethodPost, c.path, c.body, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			rec := c.up.mock.Requests(1)[0]
			if got := rec.OutputCaps[c.field]; got != c.cap {
				t.Fatalf("upstream %s = %d (caps %v), want %d", c.field, got, rec.OutputCaps, c.cap)
			}
			for f, v := range rec.OutputCaps {
				if f != c.field && f != "max_output_tokens" && v != c.cap {
					t.Errorf("upstream also got %s = %d", f, v)
				}
			}
			u, _ := h.eventsFor(resp.Header.Get("X-Request-Id"), true)
			if u == nil {
				t.Fatal("no billing.usage")
			}
			prompt := int64(len(c.body)/3) + 1
			if u.ReservedTokens != prompt+c.out {
				t.Fatalf("hold %d tokens, want prompt %d + output %d", u.ReservedTokens, prompt, c.out)
			}
		})
	}
}

// TestHoldPricesTheCap: a balance that covers a small cap but not the
// model's limit admits the capped request and refuses the uncapped one
// (before the hold priced a default the upstream never saw); n counts.
func TestHoldPricesTheCap(t *testing.T) {
	oa := newUpstream(t)
	h := startGateway(t, []internalapi.Provider{provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o")})
	// 2 USD per million output tokens: 4096 tokens hold 8192 micros.
	h.billing.mu.Lock()
	h.billing.bal = 5000
	h.billing.mu.Unlock()
	cases := []struct {
		extra  string
		status int
	}{
		{``, http.StatusPaymentRequired},
		{`,"max_output_tokens":1`, http.StatusPaymentRequired},
		{`,"max_tokens":200,"n":16`, http.StatusPaymentRequired},
		{`,"max_tokens":200`, http.StatusOK},
		{`,"n":17,"max_tokens":1`, http.StatusBadRequest},
	}
	for _, c := range cases {
		body := fmt.Sprintf(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]%s}`, c.extra)
		resp, b := h.do(http.MethodPost, "/v1/chat/completions", body, nil)
		if resp.StatusCode != c.status {
			t.Errorf("%s: %d %s, want %d", body, resp.StatusCode, b, c.status)
		}
	}
	if n := len(oa.mock.Requests(0)); n != 1 {
		t.Fatalf("upstream saw %d requests, want 1", n)
	}
}

package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/mockupstream"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

func TestRelayAllFormats(t *testing.T) {
	oa, an, ge := newUpstream(t), newUpstream(t), newUpstream(t)
	openai := provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o", "text-embedding-3-small")
	openai.ModelMapping = map[string]string{"fast": "gpt-4o-mini"}
	h := startGateway(t, []internalapi.Provider{
		openai,
		provider("prv_an", internalapi.TypeAnthropic, an, 0, 1, "claude-*"),
		provider("prv_ge", internalapi.TypeGemini, ge, 0, 1, "gemini-2.5-flash"),
	})
	reply := mockupstream.ReplyText(mockupstream.DefaultChunks)
	cases := []struct {
		name, path, body string
		stream           bool
		check            func(t *testing.T, body string)
		prompt, compl    int64
		billed           bool
	}{
		{name: "chat", path: "/v1/chat/completions", billed: true,
			body: `{"model":"gpt-4o","messages":[{"role":"user","content":"one two three"}]}`,
			check: func(t *testing.T, b string) {
				if got := gjson.Get(b, "choices.0.message.content").Str; got != reply {
					t.Errorf("content %q", got)
				}
			}, prompt: 3, compl: 5},
		{name: "chat alias renamed back", path: "/v1/chat/completions", billed: true,
			body: `{"model":"fast","messages":[{"role":"user","content":"hi"}]}`,
			check: func(t *testing.T, b string) {
				if got := gjson.Get(b, "model").Str; got != "fast" {
					t.Errorf("model %q, want the alias", got)
				}
			}, prompt: 1, compl: 5},
		{name: "chat stream without include_usage", path: "/v1/chat/completions", stream: true, billed: true,
			body: `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"a b"}]}`,
			check: func(t *testing.T, b string) {
				if strings.Contains(b, `"choices":[]`) {
					t.Errorf("usage chunk not hidden: %s", b)
				}
				if !strings.HasSuffix(b, "data: [DONE]\n\n") || streamText(b, "choices.0.delta.content") != reply {
					t.Errorf("stream %q", b)
				}
			}, prompt: 2, compl: 5},
		{name: "chat stream with include_usage", path: "/v1/chat/completions", stream: true, billed: true,
			body: `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"a b"}]}`,
			check: func(t *testing.T, b string) {
				if !strings.Contains(b, `"choices":[]`) {
					t.Errorf("usage chunk missing: %s", b)
				}
			}, prompt: 2, compl: 5},
		{name: "completions", path: "/v1/completions", billed: true,
			body:  `{"model":"gpt-4o","prompt":"x y z w"}`,
			check: func(t *testing.T, b string) {}, prompt: 4, compl: 5},
		{name: "embeddings", path: "/v1/embeddings", billed: true,
			body: `{"model":"text-embedding-3-small","input":"p q"}`,
			check: func(t *testing.T, b string) {
				if !gjson.Get(b, "data.0.embedding").IsArray() {
					t.Errorf("embedding %s", b)
				}
			}, prompt: 2},
		{name: "anthropic stream", path: "/v1/messages", stream: true, billed: true,
			body: `{"model":"claude-sonnet-4-5","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"u v w"}]}`,
			check: func(t *testing.T, b string) {
				if !strings.Contains(b, "event: message_stop") || streamText(b, "delta.text") != reply {
					t.Errorf("stream %q", b)
				}
			}, prompt: 3, compl: 5},
		{name: "anthropic count tokens", path: "/v1/messages/count_tokens",
			body: `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"u v w"}]}`,
			check: func(t *testing.T, b string) {
				if gjson.Get(b, "input_tokens").Int() != 3 {
					t.Errorf("count %s", b)
				}
			}},
		{name: "gemini generate", path: "/v1beta/models/gemini-2.5-flash:generateContent", billed: true,
			body: `{"contents":[{"parts":[{"text":"g h"}]}]}`,
			check: func(t *testing.T, b string) {
				if gjson.Get(b, "candidates.0.content.parts.0.text").Str != reply {
					t.Errorf("gemini %s", b)
				}
			}, prompt: 2, compl: 5},
		{name: "gemini stream sse", path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", stream: true, billed: true,
			body: `{"contents":[{"parts":[{"text":"g h"}]}]}`,
			check: func(t *testing.T, b string) {
				if streamText(b, "candidates.0.content.parts.0.text") != reply {
					t.Errorf("gemini sse %q", b)
				}
			}, prompt: 2, compl: 5},
		{name: "gemini stream array", path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent", stream: true, billed: true,
			body: `{"contents":[{"parts":[{"text":"g h"}]}]}`,
			check: func(t *testing.T, b string) {
				var arr []json.RawMessage
				if err := json.Unmarshal([]byte(b), &arr); err != nil || len(arr) < 2 {
					t.Errorf("not a JSON array (%v): %q", err, b)
				}
			}, prompt: 2, compl: 5},
		{name: "gemini count tokens", path: "/v1beta/models/gemini-2.5-flash:countTokens",
			body:  `{"contents":[{"parts":[{"text":"g h"}]}]}`,
			check: func(t *testing.T, b string) {}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.do(http.MethodPost, tc.path, tc.body, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			id := resp.Header.Get("X-Request-Id")
			if id == "" {
				t.Fatal("no X-Request-Id")
			}
			if tc.stream && resp.Header.Get("X-Accel-Buffering") != "no" {
				t.Errorf("stream without X-Accel-Buffering: no")
			}
			tc.check(t, string(body))
			u, logs := h.eventsFor(id, tc.billed)
			if logs[0].StatusCode != http.StatusOK || logs[0].UpstreamFormat != logs[0].APIFormat {
				t.Errorf("log status %d", logs[0].StatusCode)
			}
			if !tc.billed {
				if u != nil {
					t.Errorf("unbilled endpoint produced billing.usage %+v", u)
				}
				return
			}
			if u == nil {
				t.Fatal("no billing.usage")
			}
			if u.PromptTokens != tc.prompt || u.CompletionTokens != tc.compl || u.UsageSource != "upstream" || u.Status != "ok" ||
				!strings.HasPrefix(u.ReservationID, "lease:") || u.ReservedMicros <= 0 {
				t.Errorf("usage %+v, want prompt %d completion %d from upstream", u, tc.prompt, tc.compl)
			}
		})
	}

	t.Run("models", func(t *testing.T) {
		resp, body := h.do(http.MethodGet, "/v1/models", "", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		var ids []string
		for _, m := range gjson.GetBytes(body, "data.#.id").Array() {
			ids = append(ids, m.Str)
		}
		// Every family's models: gemini-2.5-flash is served to OpenAI
		// clients by translation (claude-* is a pattern, not listed).
		if strings.Join(ids, ",") != "fast,gemini-2.5-flash,gpt-4o,text-embedding-3-small" {
			t.Errorf("models %v", ids)
		}
	})
}

// streamText concatenates the string at path of every SSE data line.
func streamText(stream, path string) string {
	var b strings.Builder
	for _, line := range strings.Split(stream, "\n") {
		line = strings.TrimRight(line, "\r")
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			b.WriteString(gjson.Get(d, path).Str)
		}
	}
	return b.String()
}

// A client's traceparent reaches upstream (same trace, the gateway's own
// span as parent) and the events; without one, and with export off, no
// trace context is made up.
func TestTraceContextPropagation(t *testing.T) {
	oa := newUpstream(t)
	h := startGateway(t, []internalapi.Provider{provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o")})
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}`
	resp, b := h.do(http.MethodPost, "/v1/chat/completions", body, map[string]string{"Authorization": "Bearer " + h.key,
		"traceparent": "00-" + traceID + "-00f067aa0ba902b7-01"})
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	reqs := oa.mock.Requests(0)
	if len(reqs) != 1 || !strings.Contains(strings.Join(reqs[0].Headers["Traceparent"], ","), traceID) {
		t.Fatalf("upstream traceparent %v, want trace %s", reqs[0].Headers["Traceparent"], traceID)
	}
	_, logs := h.eventsFor(resp.Header.Get("X-Request-Id"), true)
	if logs[0].TraceID != traceID {
		t.Fatalf("log.write trace_id %q, want %s", logs[0].TraceID, traceID)
	}

	resp, b = h.do(http.MethodPost, "/v1/chat/completions", body, map[string]string{"Authorization": "Bearer " + h.key})
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	if reqs := oa.mock.Requests(0); len(reqs) != 2 || len(reqs[len(reqs)-1].Headers["Traceparent"]) != 0 {
		t.Fatalf("untraced request sent a traceparent upstream: %v", reqs[len(reqs)-1].Headers)
	}
	if _, logs := h.eventsFor(resp.Header.Get("X-Request-Id"), true); logs[0].TraceID != "" {
		t.Fatalf("untraced request logged trace_id %q", logs[0].TraceID)
	}
}

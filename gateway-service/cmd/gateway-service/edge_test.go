package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// geminiExploits are the route holes of issue 10: each once made the
// gateway bill one action (or none) while upstream ran another, or sent
// the provider's key to another upstream path.
var geminiExploits = map[string]string{
	"/v1beta/models/gemini-2.5-pro:streamGenerateContent%3Falt=sse%26:countTokens": "INVALID_MODEL_ACTION",
	"/v1beta/models/gemini-2.5-pro:streamGenerateContent%23:countTokens":           "INVALID_MODEL_ACTION",
	"/v1beta/models/gemini-2.5-pro%3Falt=sse%26:countTokens":                       "INVALID_MODEL_NAME",
	"/v1beta/models/gemini-2.5-pro%23:countTokens":                                 "INVALID_MODEL_NAME",
	"/v1beta/models/gemini-x%252F..%252F..%252F..%252Fzz:generateContent":          "INVALID_MODEL_NAME",
	"/v1beta/models/gemini-x%2F..%2F..%2F..%2Fzz:generateContent":                  "INVALID_MODEL_NAME",
	"/v1beta/models/..%2F..%2F..%2Fzz:generateContent":                             "INVALID_MODEL_NAME",
	"/v1beta/models/gemini-x%25:generateContent":                                   "INVALID_MODEL_NAME",
	"/v1beta/models/gemini-x:countTokens:generateContent":                          "INVALID_MODEL_ACTION",
}

func TestGeminiRouteExploitsAreRefused(t *testing.T) {
	ge := newUpstream(t)
	h := startGateway(t, []internalapi.Provider{provider("prv_ge", internalapi.TypeGemini, ge, 0, 1, "gemini-*")})
	body := `{"contents":[{"parts":[{"text":"x"}]}]}`
	for path, reason := range geminiExploits {
		resp, out := h.do(http.MethodPost, path, body, nil)
		if resp.StatusCode != http.StatusBadRequest || gjson.GetBytes(out, "error.status").Str != "INVALID_ARGUMENT" ||
			gjson.GetBytes(out, "error.details.0.reason").Str != reason {
			t.Errorf("%s: %d %s, want 400 %s in Gemini's format", path, resp.StatusCode, out, reason)
		}
	}
	if n := len(ge.mock.Requests(0)); n != 0 {
		t.Fatalf("%d refused requests reached upstream: %+v", n, ge.mock.Requests(0))
	}
	// The model is decoded once: an encoded ':' still names the action,
	// and upstream gets the canonical path.
	resp, out := h.do(http.MethodPost, "/v1beta/models/gemini-x%3AgenerateContent", body, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("encoded ':': %d %s", resp.StatusCode, out)
	}
	if r := ge.mock.Requests(1); len(r) != 1 || r[0].URI != "/v1beta/models/gemini-x:generateContent" {
		t.Fatalf("upstream saw %+v", r)
	}
}

func TestInvalidModelNameInBodyIs400(t *testing.T) {
	oa, an := newUpstream(t), newUpstream(t)
	h := startGateway(t, []internalapi.Provider{
		provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "*"),
		provider("prv_an", internalapi.TypeAnthropic, an, 0, 1, "*"),
	})
	for _, m := range []string{"gpt-4o?x=1", "gpt-4o#x", "gpt%2F4o", `a\b`, "gpt 4o", "/gpt-4o", "a/../b", "gpt-*", strings.Repeat("a", 257)} {
		resp, out := h.do(http.MethodPost, "/v1/chat/completions", `{"model":"`+strings.ReplaceAll(m, `\`, `\\`)+`","messages":[]}`, nil)
		if resp.StatusCode != 400 || gjson.GetBytes(out, "error.code").Str != "INVALID_MODEL_NAME" {
			t.Errorf("openai model %q: %d %s", m, resp.StatusCode, out)
		}
		resp, out = h.do(http.MethodPost, "/v1/messages", `{"model":"`+strings.ReplaceAll(m, `\`, `\\`)+`","max_tokens":5,"messages":[]}`, nil)
		if resp.StatusCode != 400 || gjson.GetBytes(out, "error.reason").Str != "INVALID_MODEL_NAME" ||
			gjson.GetBytes(out, "error.type").Str != "invalid_request_error" {
			t.Errorf("anthropic model %q: %d %s", m, resp.StatusCode, out)
		}
	}
	if oa.mock.Stats().Total+an.mock.Stats().Total != 0 {
		t.Fatal("a refused model name reached upstream")
	}
	for _, m := range []string{"meta-llama/Llama-3.1-70B", "claude-3-5-sonnet@20240620", "llama3:8b"} {
		resp, out := h.do(http.MethodPost, "/v1/chat/completions", `{"model":"`+m+`","messages":[{"role":"user","content":"x"}]}`, nil)
		if resp.StatusCode != 200 {
			t.Errorf("real name %q: %d %s", m, resp.StatusCode, out)
		}
	}
}

func TestQueryKeyOnlyOnV1beta(t *testing.T) {
	oa, ge := newUpstream(t), newUpstream(t)
	h := startGateway(t, []internalapi.Provider{
		provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o"),
		provider("prv_ge", internalapi.TypeGemini, ge, 0, 1, "gemini-x"),
	})
	resp, out := h.do(http.MethodPost, "/v1/chat/completions?key="+h.key, chatBody, map[string]string{"Authorization": ""})
	if resp.StatusCode != 401 || gjson.GetBytes(out, "error.code").Str != "MISSING_CREDENTIALS" {
		t.Fatalf("?key= on /v1/chat/completions: %d %s, want 401 MISSING_CREDENTIALS", resp.StatusCode, out)
	}
	resp, out = h.do(http.MethodPost, "/v1/messages?key="+h.key, `{"model":"gpt-4o","max_tokens":5,"messages":[]}`,
		map[string]string{"x-api-key": ""})
	if resp.StatusCode != 401 || gjson.GetBytes(out, "error.reason").Str != "MISSING_CREDENTIALS" {
		t.Fatalf("?key= on /v1/messages: %d %s, want 401", resp.StatusCode, out)
	}
	if oa.mock.Stats().Total != 0 {
		t.Fatal("a request authenticated by ?key= off /v1beta reached upstream")
	}
	resp, out = h.do(http.MethodPost, "/v1beta/models/gemini-x:generateContent?key="+h.key,
		`{"contents":[{"parts":[{"text":"x"}]}]}`, map[string]string{"x-goog-api-key": ""})
	if resp.StatusCode != 200 {
		t.Fatalf("?key= on /v1beta: %d %s", resp.StatusCode, out)
	}
}

// An unauthenticated request is refused from its headers: the gateway
// answers 401 while the client is still sending a large body, instead
// of reading (and buffering) the body first.
func TestUnauthenticatedBodyIsNotRead(t *testing.T) {
	oa := newUpstream(t)
	h := startGateway(t, []internalapi.Provider{provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o")})
	for _, auth := range []string{"", "Bearer sk-lurus-" + strings.Repeat("x", 40)} {
		pr, pw := io.Pipe()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.url+"/v1/chat/completions", pr)
		req.ContentLength = 16 << 20
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		go func() {
			// 64 KiB of the promised 16 MiB, then nothing until the test ends.
			_, _ = pw.Write([]byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"` + strings.Repeat("a", 64<<10)))
		}()
		type answer struct {
			resp *http.Response
			err  error
		}
		done := make(chan answer, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			done <- answer{resp, err}
		}()
		var resp *http.Response
		select {
		case a := <-done:
			if a.err != nil {
				t.Fatalf("auth %q: %v", auth, a.err)
			}
			resp = a.resp
		case <-time.After(5 * time.Second):
			pw.CloseWithError(io.ErrUnexpectedEOF)
			cancel()
			t.Fatalf("auth %q: no answer while the body was still open: the body is read before the key is checked", auth)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("auth %q: %d %s, want 401", auth, resp.StatusCode, out)
		}
		id := resp.Header.Get("X-Request-Id")
		pw.CloseWithError(io.ErrUnexpectedEOF)
		cancel()
		if _, logs := h.eventsFor(id, false); len(logs) != 1 || logs[0].StatusCode != 401 {
			t.Errorf("auth %q: refusal not logged: %+v", auth, logs)
		}
	}
	if oa.mock.Stats().Total != 0 {
		t.Fatal("an unauthenticated request reached upstream")
	}
}

// Metrics label a request with the provider entry that matched its model
// (or "other"), never with the caller's string.
func TestMetricsModelLabelIsConfigured(t *testing.T) {
	oa := newUpstream(t)
	h := startGateway(t, []internalapi.Provider{provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-*")})
	for _, m := range []string{"gpt-caller-chosen-1", "nope-caller-chosen-2"} {
		h.do(http.MethodPost, "/v1/chat/completions", `{"model":"`+m+`","messages":[{"role":"user","content":"x"}]}`, nil)
	}
	text := h.metrics()
	if strings.Contains(text, "caller-chosen") {
		t.Fatal("a caller's model name became a metric label")
	}
	for _, want := range []string{`model="gpt-*"`, `model="other"`} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/mockupstream"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// mockUsage is what every translation upstream reports: each count
// distinct, so a field mapped to another or summed twice shows.
var mockUsage = mockupstream.UsageOverride{Prompt: ptr(12), Completion: ptr(34), Cached: ptr(5), CacheWrite: ptr(2), Reasoning: ptr(7)}

// newUpstreamWith is a mock upstream with default settings s.
func newUpstreamWith(t testing.TB, s mockupstream.Settings) *upstream {
	m, err := mockupstream.New(mockupstream.Options{Defaults: s})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	return &upstream{mock: m, url: srv.URL}
}

// wantUsage is mockUsage as each family writes it, normalized: Anthropic's
// input_tokens excludes cache reads and writes (prompt 12+5+2), Gemini's
// candidatesTokenCount excludes thoughts (completion 34+7) and it has no
// cache-write count. Pass-through records exactly these too.
var wantUsage = map[string][5]int64{
	internalapi.TypeOpenAI:      {12, 34, 5, 2, 7},
	internalapi.TypeAzureOpenAI: {12, 34, 5, 2, 7},
	internalapi.TypeAnthropic:   {19, 34, 5, 2, 7},
	internalapi.TypeGemini:      {12, 41, 5, 0, 7},
}

// xclient is one client format as the harness speaks it.
type xclient struct {
	name   string
	family string // the provider type of its own family
	// path and body of a call for model m; stream asks for a stream.
	call func(m string, stream bool) (path, body string)
	// text is the reply text the client received.
	text func(body string, stream bool) string
}

var xclients = []xclient{
	{name: "openai-chat", family: internalapi.TypeOpenAI,
		call: func(m string, stream bool) (string, string) {
			b := `{"model":"` + m + `","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"one two three"}]`
			if stream {
				b += `,"stream":true,"stream_options":{"include_usage":true}`
			}
			return "/v1/chat/completions", b + "}"
		},
		text: func(b string, stream bool) string {
			if stream {
				return streamText(b, "choices.0.delta.content")
			}
			return gjson.Get(b, "choices.0.message.content").Str
		}},
	{name: "openai-responses", family: internalapi.TypeOpenAI,
		call: func(m string, stream bool) (string, string) {
			b := `{"model":"` + m + `","instructions":"be brief","input":"one two three"`
			if stream {
				b += `,"stream":true`
			}
			return "/v1/responses", b + "}"
		},
		text: func(b string, stream bool) string {
			if stream {
				return streamEventText(b, "response.output_text.delta", "delta")
			}
			return gjson.Get(b, `output.#(type=="message").content.0.text`).Str
		}},
	{name: "anthropic", family: internalapi.TypeAnthropic,
		call: func(m string, stream bool) (string, string) {
			b := `{"model":"` + m + `","max_tokens":200,"system":"be brief","messages":[{"role":"user","content":"one two three"}]`
			if stream {
				b += `,"stream":true`
			}
			return "/v1/messages", b + "}"
		},
		text: func(b string, stream bool) string {
			if stream {
				return streamEventText(b, "content_block_delta", "delta.text")
			}
			return gjson.Get(b, "content.0.text").Str
		}},
	{name: "gemini", family: internalapi.TypeGemini,
		call: func(m string, stream bool) (string, string) {
			b := `{"systemInstruction":{"parts":[{"text":"be brief"}]},"contents":[{"role":"user","parts":[{"text":"one two three"}]}]}`
			if stream {
				return "/v1beta/models/" + m + ":streamGenerateContent?alt=sse", b
			}
			return "/v1beta/models/" + m + ":generateContent", b
		},
		text: func(b string, stream bool) string {
			if stream {
				return streamText(b, "candidates.0.content.parts.0.text")
			}
			return gjson.Get(b, "candidates.0.content.parts.0.text").Str
		}},
}

// streamEventText concatenates the string at path of the SSE data of
// every event whose "type" is typ.
func streamEventText(stream, typ, path string) string {
	var b strings.Builder
	for _, line := range strings.Split(stream, "\n") {
		if d, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "data: "); ok && gjson.Get(d, "type").Str == typ {
			b.WriteString(gjson.Get(d, path).Str)
		}
	}
	return b.String()
}

// family is the API family of a provider type.
func family(typ string) string {
	if typ == internalapi.TypeAzureOpenAI || typ == internalapi.TypeOpenAICompatible {
		return internalapi.TypeOpenAI
	}
	return typ
}

// TestTranslationEveryPair: every client format reaches a model served
// only by a provider of another family (OpenAI, Azure, Anthropic, Gemini),
// streamed and not. The client reads the mock's reply in its own format,
// and billing.usage carries exactly the usage the upstream sent, mapped
// field by field (the same normalization as pass-through).
func TestTranslationEveryPair(t *testing.T) {
	settings := mockupstream.Settings{Usage: &mockUsage}
	types := []string{internalapi.TypeOpenAI, internalapi.TypeAzureOpenAI, internalapi.TypeAnthropic, internalapi.TypeGemini}
	var ps []internalapi.Provider
	ups := map[string]*upstream{}
	for _, typ := range types {
		u := newUpstreamWith(t, settings)
		ups[typ] = u
		ps = append(ps, provider("prv_"+typ, typ, u, 0, 1, "m-"+typ))
	}
	h := startGateway(t, ps)
	reply := mockupstream.ReplyText(mockupstream.DefaultChunks)
	for _, c := range xclients {
		for _, typ := range types {
			if family(typ) == c.family {
				continue // pass-through, covered by TestRelayAllFormats
			}
			for _, stream := range []bool{false, true} {
				name := c.name + "→" + typ
				if stream {
					name += "/stream"
				}
				t.Run(name, func(t *testing.T) {
					path, body := c.call("m-"+typ, stream)
					n := len(ups[typ].mock.Requests(0))
					resp, b := h.do(http.MethodPost, path, body, nil)
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("status %d: %s", resp.StatusCode, b)
					}
					if got := c.text(string(b), stream); got != reply {
						t.Errorf("client read %q, want %q; body %s", got, reply, b)
					}
					reqs := ups[typ].mock.Requests(0)
					if len(reqs) != n+1 {
						t.Fatalf("upstream saw %d requests, want 1", len(reqs)-n)
					}
					for _, k := range []string{"Anthropic-Version", "Anthropic-Beta"} {
						if v := reqs[len(reqs)-1].Headers[k]; typ != internalapi.TypeAnthropic && len(v) > 0 {
							t.Errorf("client header %s reached a %s upstream: %v", k, typ, v)
						}
					}
					u, logs := h.eventsFor(resp.Header.Get("X-Request-Id"), true)
					if u == nil {
						t.Fatal("no billing.usage")
					}
					w := wantUsage[typ]
					got := [5]int64{u.PromptTokens, u.CompletionTokens, u.CachedTokens, u.CacheWriteTokens, u.ReasoningTokens}
					if got != w || u.UsageSource != events.UsageSourceUpstream || u.Status != events.StatusOK ||
						u.ProviderID != "prv_"+typ || u.Model != "m-"+typ {
						t.Errorf("usage %+v, want counts %v from upstream", u, w)
					}
					if logs[0].StatusCode != http.StatusOK || logs[0].APIFormat != family(c.family) || logs[0].UpstreamFormat != family(typ) {
						t.Errorf("log %+v", logs[0])
					}
				})
			}
		}
	}
}

// TestTranslationRefusals: a field the target cannot express is 400
// UNSUPPORTED_PARAMETER in the caller's format naming it, and nothing is
// sent upstream; an upstream 4xx is the upstream's message in the
// caller's format with the same status; a call that has no translation
// (legacy completions, embeddings at Anthropic) finds no provider.
func TestTranslationRefusals(t *testing.T) {
	an := newUpstream(t)
	bad := newUpstream(t)
	pBad := provider("prv_bad", internalapi.TypeGemini, bad, 0, 1, "g-bad")
	pBad.Headers = map[string]string{"X-Mock-Status": "400"}
	h := startGateway(t, []internalapi.Provider{provider("prv_an", internalapi.TypeAnthropic, an, 0, 1, "claude-x"), pBad})

	resp, b := h.do(http.MethodPost, "/v1/chat/completions",
		`{"model":"claude-x","logprobs":true,"messages":[{"role":"user","content":"hi"}]}`, nil)
	if resp.StatusCode != http.StatusBadRequest || gjson.GetBytes(b, "error.code").Str != "UNSUPPORTED_PARAMETER" ||
		!strings.Contains(gjson.GetBytes(b, "error.message").Str, "logprobs") {
		t.Errorf("logprobs to Anthropic: %d %s", resp.StatusCode, b)
	}
	if n := len(an.mock.Requests(0)); n != 0 {
		t.Errorf("an unsupported call reached upstream (%d requests)", n)
	}
	_, logs := h.eventsFor(resp.Header.Get("X-Request-Id"), true)
	if logs[0].ErrorReason != "UNSUPPORTED_PARAMETER" {
		t.Errorf("log reason %q", logs[0].ErrorReason)
	}

	resp, b = h.do(http.MethodPost, "/v1/messages",
		`{"model":"g-bad","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`, nil)
	if resp.StatusCode != http.StatusBadRequest || gjson.GetBytes(b, "type").Str != "error" ||
		gjson.GetBytes(b, "error.type").Str != "invalid_request_error" || gjson.GetBytes(b, "error.message").Str == "" {
		t.Errorf("Gemini 400 to an Anthropic client: %d %s", resp.StatusCode, b)
	}

	resp, b = h.do(http.MethodPost, "/v1/completions", `{"model":"claude-x","prompt":"hi"}`, nil)
	if resp.StatusCode != http.StatusNotFound || gjson.GetBytes(b, "error.code").Str != "MODEL_NOT_FOUND" {
		t.Errorf("legacy completions across families: %s", b)
	}
	resp, b = h.do(http.MethodPost, "/v1/embeddings", `{"model":"claude-x","input":"hi"}`, nil)
	if resp.StatusCode != http.StatusNotFound || gjson.GetBytes(b, "error.code").Str != "MODEL_NOT_FOUND" {
		t.Errorf("embeddings at Anthropic: %d %s", resp.StatusCode, b)
	}
	resp, b = h.do(http.MethodPost, "/v1/chat/completions", `{"model":"nobody","messages":[{"role":"user","content":"hi"}]}`, nil)
	if gjson.GetBytes(b, "error.code").Str != "MODEL_NOT_FOUND" {
		t.Errorf("unlisted model: %d %s", resp.StatusCode, b)
	}
}

// TestTranslationRoutingOrder: within a priority the client's own family
// is tried first (pass-through), a failing one fails over to another
// family before the first byte, and a provider that opted out of
// translation is never reached across families.
func TestTranslationRoutingOrder(t *testing.T) {
	oa, down, an, ge := newUpstream(t), newUpstream(t), newUpstream(t), newUpstream(t)
	po := provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "shared")
	pd := provider("prv_down", internalapi.TypeOpenAI, down, 0, 1, "failover")
	pd.Headers = map[string]string{"X-Mock-Status": "503"}
	pa := provider("prv_an", internalapi.TypeAnthropic, an, 0, 100, "shared", "failover")
	pg := provider("prv_ge", internalapi.TypeGemini, ge, 0, 1, "shared", "gem-only", "failover")
	pg.PassthroughOnly = true
	h := startGateway(t, []internalapi.Provider{po, pd, pa, pg})
	for i := 0; i < 3; i++ {
		resp, b := h.do(http.MethodPost, "/v1/chat/completions", `{"model":"shared","messages":[{"role":"user","content":"hi"}]}`, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	}
	if len(oa.mock.Requests(0)) != 3 || len(an.mock.Requests(0)) != 0 {
		t.Errorf("own family not preferred: openai %d anthropic %d", len(oa.mock.Requests(0)), len(an.mock.Requests(0)))
	}
	if resp, b := h.do(http.MethodPost, "/v1/chat/completions", `{"model":"gem-only","messages":[{"role":"user","content":"hi"}]}`, nil); resp.StatusCode != http.StatusNotFound || gjson.GetBytes(b, "error.code").Str != "MODEL_NOT_FOUND" {
		t.Errorf("opted-out provider reached by translation: %d %s", resp.StatusCode, b)
	}

	resp, b := h.do(http.MethodPost, "/v1/chat/completions", `{"model":"failover","messages":[{"role":"user","content":"hi"}]}`, nil)
	if resp.StatusCode != 200 || gjson.GetBytes(b, "choices.0.message.content").Str == "" {
		t.Fatalf("failover across families: %d %s", resp.StatusCode, b)
	}
	if len(down.mock.Requests(0)) != 1 || len(an.mock.Requests(0)) != 1 || len(ge.mock.Requests(0)) != 0 {
		t.Errorf("failover went to openai %d anthropic %d gemini %d, want 1 1 0",
			len(down.mock.Requests(0)), len(an.mock.Requests(0)), len(ge.mock.Requests(0)))
	}
	_, logs := h.eventsFor(resp.Header.Get("X-Request-Id"), true)
	if logs[0].Attempts != 2 || logs[0].ProviderID != "prv_an" || logs[0].APIFormat != "openai" || logs[0].UpstreamFormat != "anthropic" {
		t.Errorf("log %+v", logs[0])
	}
}

// xtool is how one client format declares the tool get_weather and reads
// the call the model made (name, arguments as JSON text).
type xtool struct {
	tools string
	call  func(body string, stream bool) (name, args string)
}

var xtools = map[string]xtool{
	"openai-chat": {tools: `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]`,
		call: func(b string, stream bool) (string, string) {
			if !stream {
				return gjson.Get(b, "choices.0.message.tool_calls.0.function.name").Str, gjson.Get(b, "choices.0.message.tool_calls.0.function.arguments").Str
			}
			return streamFirst(b, "choices.0.delta.tool_calls.0.function.name"), streamText(b, "choices.0.delta.tool_calls.0.function.arguments")
		}},
	"openai-responses": {tools: `"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]`,
		call: func(b string, stream bool) (string, string) {
			if !stream {
				return gjson.Get(b, `output.#(type=="function_call").name`).Str, gjson.Get(b, `output.#(type=="function_call").arguments`).Str
			}
			return streamFirst(b, "item.name"), streamEventText(b, "response.function_call_arguments.delta", "delta")
		}},
	"anthropic": {tools: `"tools":[{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}]`,
		call: func(b string, stream bool) (string, string) {
			if !stream {
				return gjson.Get(b, `content.#(type=="tool_use").name`).Str, gjson.Get(b, `content.#(type=="tool_use").input`).Raw
			}
			return streamFirst(b, "content_block.name"), streamEventText(b, "content_block_delta", "delta.partial_json")
		}},
	"gemini": {tools: `"tools":[{"functionDeclarations":[{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]}]`,
		call: func(b string, stream bool) (string, string) {
			if !stream {
				return gjson.Get(b, "candidates.0.content.parts.0.functionCall.name").Str, gjson.Get(b, "candidates.0.content.parts.0.functionCall.args").Raw
			}
			return streamFirst(b, "candidates.0.content.parts.0.functionCall.name"), streamFirstRaw(b, "candidates.0.content.parts.0.functionCall.args")
		}},
}

// streamFirst is the first non-empty string at path in the SSE data.
func streamFirst(stream, path string) string {
	for _, line := range strings.Split(stream, "\n") {
		if d, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "data: "); ok {
			if s := gjson.Get(d, path).Str; s != "" {
				return s
			}
		}
	}
	return ""
}

// streamFirstRaw is the first JSON value at path in the SSE data.
func streamFirstRaw(stream, path string) string {
	for _, line := range strings.Split(stream, "\n") {
		if d, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "data: "); ok {
			if r := gjson.Get(d, path); r.Exists() {
				return r.Raw
			}
		}
	}
	return ""
}

// sameJSON reports whether a and b are the same JSON value.
func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

// TestTranslationToolCalls: every client format declares a tool and gets
// the upstream's call of it, name and arguments, from every other
// family, streamed (argument deltas) and not; usage exact as upstream
// sent it.
func TestTranslationToolCalls(t *testing.T) {
	settings := mockupstream.Settings{Usage: &mockUsage, ToolCall: ptr("get_weather")}
	types := []string{internalapi.TypeOpenAI, internalapi.TypeAnthropic, internalapi.TypeGemini}
	var ps []internalapi.Provider
	for _, typ := range types {
		ps = append(ps, provider("prv_"+typ, typ, newUpstreamWith(t, settings), 0, 1, "m-"+typ))
	}
	h := startGateway(t, ps)
	for _, c := range xclients {
		tl := xtools[c.name]
		for _, typ := range types {
			if family(typ) == c.family {
				continue
			}
			for _, stream := range []bool{false, true} {
				name := c.name + "→" + typ
				if stream {
					name += "/stream"
				}
				t.Run(name, func(t *testing.T) {
					path, body := c.call("m-"+typ, stream)
					body = body[:len(body)-1] + "," + tl.tools + "}"
					resp, b := h.do(http.MethodPost, path, body, nil)
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("status %d: %s", resp.StatusCode, b)
					}
					fn, args := tl.call(string(b), stream)
					if fn != "get_weather" || !sameJSON(args, mockupstream.FixedToolArguments) {
						t.Errorf("tool call %q(%s); body %s", fn, args, b)
					}
					u, _ := h.eventsFor(resp.Header.Get("X-Request-Id"), true)
					w := wantUsage[typ]
					if u == nil || [5]int64{u.PromptTokens, u.CompletionTokens, u.CachedTokens, u.CacheWriteTokens, u.ReasoningTokens} != w {
						t.Errorf("usage %+v, want %v", u, w)
					}
				})
			}
		}
	}
}

// TestTranslationListsEmbeddingsAndCounts: each format's model list names
// the models of every family (opted-out providers of another family
// excepted); embeddings translate between OpenAI and Gemini with the
// upstream's vectors and usage; count-tokens goes to the target's count
// call (Anthropic, Gemini) or, for a model only OpenAI's family serves,
// is answered by the local tokenizer; nothing of it is billed.
func TestTranslationListsEmbeddingsAndCounts(t *testing.T) {
	oa, an, ge, pt := newUpstream(t), newUpstream(t), newUpstream(t), newUpstream(t)
	ppt := provider("prv_pt", internalapi.TypeAnthropic, pt, 0, 1, "claude-private")
	ppt.PassthroughOnly = true
	h := startGateway(t, []internalapi.Provider{
		provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-x", "emb-oa"),
		provider("prv_an", internalapi.TypeAnthropic, an, 0, 1, "claude-x"),
		provider("prv_ge", internalapi.TypeGemini, ge, 0, 1, "gem-x", "emb-ge"),
		ppt,
	})
	ids := func(body []byte, path string) string {
		var out []string
		for _, m := range gjson.GetBytes(body, path).Array() {
			out = append(out, m.Str)
		}
		return strings.Join(out, ",")
	}
	_, b := h.do(http.MethodGet, "/v1/models", "", nil)
	if got := ids(b, "data.#.id"); got != "claude-x,emb-ge,emb-oa,gem-x,gpt-x" {
		t.Errorf("OpenAI list %s", got)
	}
	_, b = h.do(http.MethodGet, "/v1/models", "", map[string]string{"Authorization": "", "x-api-key": h.key, "anthropic-version": "2023-06-01"})
	if got := ids(b, "data.#.id"); got != "claude-private,claude-x,emb-ge,emb-oa,gem-x,gpt-x" || gjson.GetBytes(b, "data.0.type").Str != "model" {
		t.Errorf("Anthropic list %s", b)
	}
	_, b = h.do(http.MethodGet, "/v1beta/models", "", nil)
	if got := ids(b, "models.#.name"); got != "models/claude-x,models/emb-ge,models/emb-oa,models/gem-x,models/gpt-x" {
		t.Errorf("Gemini list %s", b)
	}

	// Embeddings: OpenAI client → Gemini, Gemini clients → OpenAI.
	resp, b := h.do(http.MethodPost, "/v1/embeddings", `{"model":"emb-ge","input":["a b","c"]}`, nil)
	if resp.StatusCode != 200 || len(gjson.GetBytes(b, "data").Array()) != 2 || !gjson.GetBytes(b, "data.1.embedding").IsArray() {
		t.Fatalf("OpenAI embeddings from Gemini: %d %s", resp.StatusCode, b)
	}
	if reqs := ge.mock.Requests(0); len(reqs) != 1 || !strings.HasSuffix(reqs[0].Path, ":batchEmbedContents") {
		t.Errorf("Gemini upstream saw %+v", reqs)
	}
	u, _ := h.eventsFor(resp.Header.Get("X-Request-Id"), true)
	if u == nil || u.PromptTokens <= 0 || u.UsageSource != events.UsageSourceEstimated {
		// Gemini's embedding answer has no usage: the local count, as on
		// pass-through.
		t.Errorf("usage %+v", u)
	}
	resp, b = h.do(http.MethodPost, "/v1beta/models/emb-oa:embedContent", `{"content":{"parts":[{"text":"p q r"}]}}`, nil)
	if resp.StatusCode != 200 || !gjson.GetBytes(b, "embedding.values").IsArray() {
		t.Fatalf("Gemini embedContent from OpenAI: %d %s", resp.StatusCode, b)
	}
	u, _ = h.eventsFor(resp.Header.Get("X-Request-Id"), true)
	if u == nil || u.PromptTokens != 3 || u.UsageSource != events.UsageSourceUpstream {
		t.Errorf("usage %+v", u)
	}
	resp, b = h.do(http.MethodPost, "/v1beta/models/emb-oa:batchEmbedContents",
		`{"requests":[{"model":"models/emb-oa","content":{"parts":[{"text":"x"}]}},{"model":"models/emb-oa","content":{"parts":[{"text":"y z"}]}}]}`, nil)
	if resp.StatusCode != 200 || len(gjson.GetBytes(b, "embeddings").Array()) != 2 {
		t.Fatalf("Gemini batchEmbedContents from OpenAI: %d %s", resp.StatusCode, b)
	}

	// Count tokens: to the target's count call, or locally.
	resp, b = h.do(http.MethodPost, "/v1/messages/count_tokens", `{"model":"gem-x","messages":[{"role":"user","content":"one two three four"}]}`, nil)
	if resp.StatusCode != 200 || gjson.GetBytes(b, "input_tokens").Int() != 4 {
		t.Errorf("Anthropic count via Gemini: %d %s", resp.StatusCode, b)
	}
	if reqs := ge.mock.Requests(0); !strings.HasSuffix(reqs[len(reqs)-1].Path, ":countTokens") {
		t.Errorf("Gemini upstream saw %s", reqs[len(reqs)-1].Path)
	}
	resp, b = h.do(http.MethodPost, "/v1beta/models/claude-x:countTokens", `{"contents":[{"parts":[{"text":"one two"}]}]}`, nil)
	if resp.StatusCode != 200 || gjson.GetBytes(b, "totalTokens").Int() != 2 {
		t.Errorf("Gemini count via Anthropic: %d %s", resp.StatusCode, b)
	}
	n := len(oa.mock.Requests(0))
	resp, b = h.do(http.MethodPost, "/v1/messages/count_tokens", `{"model":"gpt-x","messages":[{"role":"user","content":"one two three"}]}`, nil)
	if resp.StatusCode != 200 || gjson.GetBytes(b, "input_tokens").Int() <= 0 {
		t.Errorf("Anthropic count of an OpenAI model: %d %s", resp.StatusCode, b)
	}
	if len(oa.mock.Requests(0)) != n {
		t.Error("a local count called the OpenAI upstream")
	}
	u, logs := h.eventsFor(resp.Header.Get("X-Request-Id"), false)
	if u != nil || logs[0].StatusCode != 200 {
		t.Errorf("local count: usage %+v log %+v", u, logs[0])
	}
	resp, b = h.do(http.MethodPost, "/v1beta/models/gpt-x:countTokens", `{"contents":[{"parts":[{"text":"one two"}]}]}`, nil)
	if resp.StatusCode != 200 || gjson.GetBytes(b, "totalTokens").Int() <= 0 {
		t.Errorf("Gemini count of an OpenAI model: %d %s", resp.StatusCode, b)
	}
}

// TestTranslatedStreamCutAndDisconnect: a translated stream from an
// upstream that ignores its cap is cut at the held output with the
// client's own max-tokens end and billed as on pass-through (prompt +
// delivered output ≤ held), upstream closed at once; a client that goes
// away mid-stream leaves the gateway reading upstream (bounded), so the
// usage billed is upstream's own final count.
func TestTranslatedStreamCutAndDisconnect(t *testing.T) {
	an, ge := newUpstream(t), newUpstreamWith(t, mockupstream.Settings{Usage: &mockUsage, Chunks: ptr(40), GapMs: ptr(5)})
	pa := provider("prv_an", internalapi.TypeAnthropic, an, 0, 1, "claude-x")
	ignoringCap(t, an, &pa)
	h := startGateway(t, []internalapi.Provider{pa, provider("prv_ge", internalapi.TypeGemini, ge, 0, 1, "gem-x")})

	const held = 50
	t0 := time.Now()
	resp, b := h.do(http.MethodPost, "/v1/chat/completions",
		`{"model":"claude-x","stream":true,"max_tokens":50,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"count"}]}`, nil)
	s := string(b)
	if resp.StatusCode != 200 || !strings.Contains(s, `"finish_reason":"length"`) || !strings.HasSuffix(s, "data: [DONE]\n\n") {
		t.Fatalf("cut stream %d: %q", resp.StatusCode, s[max(0, len(s)-400):])
	}
	if time.Since(t0) > 20*time.Second {
		t.Error("upstream was drained after the cut")
	}
	text := streamText(s, "choices.0.delta.content")
	if text == "" || !strings.HasPrefix(mockupstream.ReplyText(1000), text) || len(text) > 4*held {
		t.Errorf("delivered %q", text)
	}
	h.eventually(func() bool { return an.mock.Stats().InFlight == 0 })
	u, _ := h.eventsFor(resp.Header.Get("X-Request-Id"), true)
	if u.CompletionTokens <= 0 || u.CompletionTokens > held || u.PromptTokens <= 0 || u.Status != "ok" || u.UsageSource != "upstream" {
		t.Errorf("billed %+v, want 0 < completion <= %d, prompt from upstream", u, held)
	}
	if got := lastUsage(s); got != u.CompletionTokens {
		t.Errorf("the client's usage chunk says %d completion tokens, billed %d", got, u.CompletionTokens)
	}
	if !strings.Contains(h.metrics(), `lurus_gateway_output_cap_enforced_total{provider="prv_an"} 1`) {
		t.Error("cut not counted")
	}

	// Disconnect: read the first event, then go away.
	req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/messages", strings.NewReader(
		`{"model":"gem-x","max_tokens":500,"stream":true,"messages":[{"role":"user","content":"one two"}]}`))
	req.Header.Set("x-api-key", h.key)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("Content-Type", "application/json")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if _, err := r.Body.Read(buf); err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	u, logs := h.eventsFor(r.Header.Get("X-Request-Id"), true)
	if u.Status != "client_cancelled" || u.UsageSource != "upstream" || u.PromptTokens != 12 || u.CompletionTokens != 41 {
		t.Errorf("disconnected stream billed %+v, want upstream's final 12/41", u)
	}
	if logs[0].UpstreamFormat != "gemini" || logs[0].APIFormat != "anthropic" {
		t.Errorf("log %+v", logs[0])
	}
}

// BenchmarkChatTranslated is BenchmarkChatThroughGateway's call served by
// an Anthropic upstream: the OpenAI body read into the canonical form,
// written as Messages, the answer decoded and encoded as a chat
// completion. Run it beside the pass-through benchmark in one process to
// see what translation adds.
func BenchmarkChatTranslated(b *testing.B) {
	u := newUpstream(b)
	h := startGateway(b, []internalapi.Provider{provider("prv_an", internalapi.TypeAnthropic, u, 0, 1, "gpt-4o")})
	benchPost(b, h.url+"/v1/chat/completions", "Bearer "+h.key)
}

package biz

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire/anthropic"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire/openaichat"
)

// failAfter yields s, then fails like a dropped connection.
type failAfter struct{ s *strings.Reader }

func (f *failAfter) Read(p []byte) (int, error) {
	if f.s.Len() == 0 {
		return 0, errors.New("connection reset")
	}
	return f.s.Read(p)
}

const chatStream = `data: {"id":"c1","object":"chat.completion.chunk","model":"up","choices":[{"index":0,"delta":{"role":"assistant","content":"hello "}}]}

data: {"id":"c1","object":"chat.completion.chunk","model":"up","choices":[{"index":0,"delta":{"content":"world, this is a long answer"}}]}

data: {"id":"c1","object":"chat.completion.chunk","model":"up","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}

data: {"id":"c1","object":"chat.completion.chunk","model":"up","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":7}}

data: [DONE]

`

func runXstream(t *testing.T, src io.Reader, held int64) (*xstream, string) {
	t.Helper()
	var out strings.Builder
	s := &xstream{dec: openaichat.Adapter{}.NewStreamDecoder(), enc: anthropic.Adapter{}.NewStreamEncoder(&wire.Request{Model: "claude-x"}),
		held: held, prompt: func() int64 { return 3 }, write: func(b []byte) error { out.Write(b); return nil }}
	s.pump(src, make([]byte, 64))
	return s, out.String()
}

// An OpenAI stream reaches an Anthropic client whole, with upstream's
// usage; the same stream dropped mid-way ends with Anthropic's error
// event; one past its allowance is cut with max_tokens and billed what
// was delivered, at most the allowance.
func TestXstream(t *testing.T) {
	s, out := runXstream(t, strings.NewReader(chatStream), 1000)
	if s.upstreamErr != nil || s.cut || !s.hasUsage || s.usage.Prompt != 9 || s.usage.Completion != 7 ||
		!strings.Contains(out, `"text":"hello "`) || !strings.HasSuffix(out, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n") {
		t.Fatalf("whole stream: %+v\n%s", s, out)
	}
	if got := string(s.DeliveredText()); got != "hello world, this is a long answer" {
		t.Errorf("delivered %q", got)
	}

	cut := chatStream[:strings.Index(chatStream, `data: {"id":"c1","object":"chat.completion.chunk","model":"up","choices":[{"index":0,"delta":{},`)]
	s, out = runXstream(t, &failAfter{strings.NewReader(cut)}, 1000)
	if s.upstreamErr == nil || !strings.HasSuffix(out, "\n\n") || !strings.Contains(out, "event: error") ||
		strings.Contains(out, "message_stop") {
		t.Errorf("dropped stream: %v\n%s", s.upstreamErr, out)
	}

	// Allowance 10 tokens, no tokenizer (a byte per token): the second
	// delta would take 6+28 bytes past it.
	s, out = runXstream(t, strings.NewReader(chatStream), 10)
	if !s.cut || strings.Contains(out, "long answer") || !strings.Contains(out, `"stop_reason":"max_tokens"`) ||
		!strings.HasSuffix(out, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n") {
		t.Fatalf("cut: %+v\n%s", s, out)
	}
	if s.cutUsage.Completion != 6 || s.cutUsage.Prompt != 3 {
		t.Errorf("cut usage %+v, want 6 delivered, prompt counted locally", s.cutUsage)
	}
}

// A field the target cannot express is UNSUPPORTED_PARAMETER naming it,
// before anything is sent; neutral client headers only reach another
// family, the writer's credential wins.
func TestBuildTranslated(t *testing.T) {
	r := &Relay{}
	p := &Provider{ID: "an", Type: internalapi.TypeAnthropic, BaseURL: "https://api.anthropic.test",
		Headers: map[string]string{"X-Extra": "1"}}
	c := &Candidate{Provider: p, Key: &ProviderKey{Secret: "sk-up"}, UpstreamModel: "claude-up", Translate: true}
	req := &Request{Endpoint: EndpointChatCompletions, Body: []byte(`{"model":"claude","logprobs":true,"messages":[{"role":"user","content":"hi"}]}`),
		Forward: []Header{{"Content-Type", "application/json"}, {"Anthropic-Beta", "x"}, {"User-Agent", "sdk"}}}
	var x *translation
	_, err := r.buildTranslated(req, RequestInfo{Model: "claude", OutputCap: 100}, c, &x)
	if apperr.ReasonOf(err) != apperr.ReasonUnsupportedParameter || !strings.Contains(err.Error(), "logprobs") {
		t.Fatalf("logprobs to Anthropic: %v", err)
	}
	if status, _ := ErrorBody(FormatOpenAI, err); status != 400 {
		t.Errorf("status %d", status)
	}

	req.Body = []byte(`{"model":"claude","messages":[{"role":"user","content":"hi"}]}`)
	x = nil
	u, err := r.buildTranslated(req, RequestInfo{Model: "claude", OutputCap: 100}, c, &x)
	if err != nil {
		t.Fatal(err)
	}
	hdr := map[string]string{}
	for _, h := range u.Headers {
		hdr[strings.ToLower(h.Key)] = h.Value
	}
	if u.URL != "https://api.anthropic.test/v1/messages" || hdr["x-api-key"] != "sk-up" || hdr["anthropic-beta"] != "" ||
		hdr["user-agent"] != "sdk" || hdr["x-extra"] != "1" || hdr["anthropic-version"] == "" {
		t.Errorf("upstream request %s %v", u.URL, hdr)
	}
	if !strings.Contains(string(u.Body), `"model":"claude-up"`) || !strings.Contains(string(u.Body), `"max_tokens":100`) {
		t.Errorf("body %s", u.Body)
	}
}

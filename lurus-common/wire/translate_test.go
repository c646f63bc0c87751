package wire_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/golden"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire/anthropic"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire/gemini"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire/openaichat"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire/openairesponses"
)

// The translation transcripts: every client format × every upstream
// family it reaches by translation, through the adapters alone. For each
// pair the client's request (testdata/translate/requests/<client>.json)
// is read by the client's adapter and written by the upstream's; the
// upstream's stream (streams/<upstream>.sse) and answer
// (answers/<upstream>.json) are decoded by the upstream's adapter and
// encoded by the client's. The results are golden files
// (<client>__<upstream>.{request,stream,answer}.golden; go test -update
// rewrites them), and the client's output is decoded back by the client's
// own adapter to check that text, tool call, finish reason and usage
// arrive as upstream gave them.

// upstreamAdapter is what the gateway needs of an upstream's adapter.
type upstreamAdapter interface {
	wire.RequestWriter
	wire.ResponseDecoder
	wire.StreamDecoder
	wire.ErrorDecoder
}

// clientAdapter is what the gateway needs of a client's adapter, plus
// the decoders the test reads the client's output back with.
type clientAdapter interface {
	wire.RequestReader
	wire.ResponseEncoder
	wire.StreamEncoder
	wire.ResponseDecoder
	wire.StreamDecoder
	wire.ErrorRenderer
	wire.ErrorDecoder
}

// secret is every upstream's credential; golden files show <secret>.
const secret = "sk-upstream-secret-0123"

// fixedNow stamps the answers of the Responses encoder.
var fixedNow = func() time.Time { return time.Unix(1700000000, 0) }

// family is an upstream family: the provider a request is written for,
// its adapter, and the canonical usage its transcripts say, worked out by
// hand from the vendor's own fields.
type family struct {
	name    string
	up      wire.Upstream
	adapter upstreamAdapter
	// client is the client format that reaches it by pass-through.
	client string
	usage  wire.Usage
	finish wire.FinishReason
	// errorBody is an error answer in the vendor's shape, saying
	// "Rate limit reached".
	errorBody string
}

var families = []family{
	{name: "openai", client: "chat", adapter: openaichat.Adapter{},
		up: wire.Upstream{Type: internalapi.TypeOpenAI, BaseURL: "https://api.openai.com/v1", Model: "gpt-4o"},
		// prompt_tokens holds cached_tokens; completion holds reasoning.
		usage: wire.Usage{Prompt: 1200, Completion: 85, Cached: 1024, Reasoning: 30}, finish: wire.FinishToolCalls,
		errorBody: `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`},
	{name: "azure-openai", client: "chat", adapter: openaichat.Adapter{},
		up: wire.Upstream{Type: internalapi.TypeAzureOpenAI, BaseURL: "https://contoso.openai.azure.com",
			APIVersion: "2024-10-21", Model: "gpt-4o-prod"},
		usage: wire.Usage{Prompt: 950, Completion: 40, Cached: 512}, finish: wire.FinishToolCalls,
		errorBody: `{"error":{"code":"429","message":"Rate limit reached"}}`},
	{name: "openai-compatible", client: "chat", adapter: openaichat.Adapter{},
		up:    wire.Upstream{Type: internalapi.TypeOpenAICompatible, BaseURL: "https://llm.example.net/v1", Model: "qwen3-235b"},
		usage: wire.Usage{Prompt: 700, Completion: 120, Cached: 256, CacheWrite: 128, Reasoning: 64}, finish: wire.FinishToolCalls,
		errorBody: `{"error":{"message":"Rate limit reached","type":"rate_limit","code":429}}`},
	{name: "anthropic", client: "anthropic", adapter: anthropic.Adapter{},
		up: wire.Upstream{Type: internalapi.TypeAnthropic, BaseURL: "https://api.anthropic.com", Model: "claude-sonnet-4-5"},
		// input_tokens excludes the cache reads and writes: 25+300+40.
		usage: wire.Usage{Prompt: 365, Completion: 89, Cached: 300, CacheWrite: 40}, finish: wire.FinishToolCalls,
		errorBody: `{"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached"},"request_id":"req_1"}`},
	{name: "gemini", client: "gemini", adapter: gemini.Adapter{},
		up: wire.Upstream{Type: internalapi.TypeGemini, BaseURL: "https://generativelanguage.googleapis.com", Model: "gemini-2.5-flash"},
		// candidatesTokenCount excludes thoughts: 60+25.
		usage: wire.Usage{Prompt: 500, Completion: 85, Cached: 384, Reasoning: 25}, finish: wire.FinishToolCalls,
		errorBody: `{"error":{"code":429,"message":"Rate limit reached","status":"RESOURCE_EXHAUSTED"}}`},
}

// client is a client format.
type client struct {
	// name names the golden files; request names the request file.
	name, request string
	adapter       clientAdapter
	// family is the upstream family the client reaches by pass-through
	// ("" for Responses, whose own upstream is not among the families:
	// a Responses client reaches chat-completions upstreams translated).
	family string
	// route sets what the gateway's route decides before reading.
	route func(*wire.Request)
	// array frames the stream as a JSON array, not SSE.
	array bool
	// streamOnly: the request and answer are another client's.
	streamOnly bool
	// shown is the usage the format can show a client of canonical u.
	shown func(u wire.Usage) wire.Usage
	// check is a format-specific validity check of the client's stream.
	check func(t *testing.T, units [][]byte)
}

func generate(r *wire.Request) { r.Op = wire.OpGenerate }

func geminiRoute(r *wire.Request) {
	r.Op, r.Model, r.Stream = wire.OpGenerate, "switch-alias", true
}

func allUsage(u wire.Usage) wire.Usage { return u }

// geminiUsage: usageMetadata has no cache-write count; those tokens stay
// inside promptTokenCount (the package doc of gemini says so).
func geminiUsage(u wire.Usage) wire.Usage { u.CacheWrite = 0; return u }

var clients = []client{
	{name: "chat", request: "chat", adapter: openaichat.Adapter{}, family: "chat", route: generate, shown: allUsage},
	{name: "responses", request: "responses", adapter: openairesponses.Adapter{Now: fixedNow}, route: generate,
		shown: allUsage, check: checkResponsesStream},
	{name: "anthropic", request: "anthropic", adapter: anthropic.Adapter{}, family: "anthropic", route: generate,
		shown: allUsage, check: checkAnthropicStream},
	{name: "gemini", request: "gemini", adapter: gemini.Adapter{}, family: "gemini", route: geminiRoute, shown: geminiUsage},
	{name: "gemini-array", request: "gemini", adapter: gemini.Adapter{Array: true}, family: "gemini", route: geminiRoute,
		array: true, streamOnly: true, shown: geminiUsage},
}

// TestTranslate runs every client × upstream pair that the gateway
// translates.
func TestTranslate(t *testing.T) {
	pairs := 0
	for _, c := range clients {
		for _, f := range families {
			if c.family == f.client {
				continue // pass-through: the gateway relays bytes
			}
			pairs++
			t.Run(c.name+"__"+f.name, func(t *testing.T) {
				name := filepath.Join("translate", c.name+"__"+f.name)
				req := readClientRequest(t, c)
				if !c.streamOnly {
					t.Run("request", func(t *testing.T) { testRequest(t, name, req, f) })
					t.Run("answer", func(t *testing.T) { testAnswer(t, name, req, c, f) })
				}
				t.Run("stream", func(t *testing.T) { testStream(t, name, req, c, f) })
				t.Run("error", func(t *testing.T) { testError(t, req, c, f) })
			})
		}
	}
	// 2 (chat) + 5 (responses) + 4 (anthropic) + 4 (gemini) + 4 (gemini array)
	if pairs != 19 {
		t.Fatalf("%d pairs run, want 19", pairs)
	}
}

// readClientRequest reads the client's request as the gateway would: the
// route's settings, the client's adapter, then the priced output cap.
func readClientRequest(t *testing.T, c client) *wire.Request {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", "translate", "requests", c.request+".json"))
	if err != nil {
		t.Fatal(err)
	}
	req := &wire.Request{}
	c.route(req)
	if err := c.adapter.ReadRequest(body, req); err != nil {
		t.Fatalf("read %s request: %v", c.name, err)
	}
	if len(req.Refused) > 0 {
		t.Fatalf("request refuses %v", req.Refused)
	}
	// The gateway prices the client's cap, lowered to the model's limit,
	// and hands every writer that value: a limit of 256 here shows that
	// the writers send the priced cap, not the client's.
	if req.MaxOutputTokens != 300 {
		t.Fatalf("client cap read as %d, want 300", req.MaxOutputTokens)
	}
	req.MaxOutputTokens = min(req.MaxOutputTokens, 256)
	return req
}

// testRequest writes the request for the upstream and compares URL,
// headers (the credential shown as <secret>) and the indented body.
func testRequest(t *testing.T, name string, req *wire.Request, f family) {
	up := f.up
	up.Secret = secret
	hr, err := f.adapter.WriteRequest(req, up)
	if err != nil {
		t.Fatalf("write for %s: %v", f.name, err)
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "POST %s\n", hr.URL)
	credentials := 0
	for _, h := range hr.Headers {
		if strings.Contains(h.Value, secret) {
			credentials++
		}
		fmt.Fprintf(&out, "%s: %s\n", h.Key, strings.ReplaceAll(h.Value, secret, "<secret>"))
	}
	if credentials != 1 {
		t.Errorf("%d headers carry the credential, want 1", credentials)
	}
	if bytes.Contains(hr.Body, []byte(secret)) {
		t.Error("the credential is in the body")
	}
	out.WriteByte('\n')
	if err := json.Indent(&out, hr.Body, "", "  "); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, hr.Body)
	}
	out.WriteByte('\n')
	golden.Bytes(t, name+".request.golden", out.Bytes())

	// The cap priced is the cap sent, in the field the family honours.
	var body map[string]any
	_ = json.Unmarshal(hr.Body, &body)
	capField := map[string]string{internalapi.TypeOpenAI: "max_completion_tokens", internalapi.TypeAzureOpenAI: "max_completion_tokens",
		internalapi.TypeOpenAICompatible: "max_tokens", internalapi.TypeAnthropic: "max_tokens"}[f.up.Type]
	var got any
	if capField != "" {
		got = body[capField]
	} else if gc, ok := body["generationConfig"].(map[string]any); ok {
		got = gc["maxOutputTokens"]
	}
	if got != float64(req.MaxOutputTokens) {
		t.Errorf("output cap sent as %v, want %d", got, req.MaxOutputTokens)
	}
}

// outcome is what a stream or answer says, canonically.
type outcome struct {
	Text, Reasoning string
	Calls           []call
	Finish          wire.FinishReason
	Usage           wire.Usage
	HasUsage        bool
	starts, ends    int
}

type call struct{ ID, Name, Args string }

func (o *outcome) add(ev wire.Event) {
	switch ev.Kind {
	case wire.EventStart:
		o.starts++
	case wire.EventText:
		o.Text += ev.Text
	case wire.EventReasoning:
		o.Reasoning += ev.Text
	case wire.EventToolCall:
		for len(o.Calls) <= ev.Index {
			o.Calls = append(o.Calls, call{})
		}
		o.Calls[ev.Index].ID, o.Calls[ev.Index].Name = ev.ToolCallID, ev.ToolName
	case wire.EventToolArgs:
		for len(o.Calls) <= ev.Index {
			o.Calls = append(o.Calls, call{})
		}
		o.Calls[ev.Index].Args += ev.Text
	case wire.EventFinish:
		o.ends++
		o.Finish = ev.Finish
	case wire.EventUsage:
		o.Usage, o.HasUsage = ev.Usage, true
	case wire.EventError:
		o.Text += "<error:" + ev.Text + ">"
	}
}

func outcomeOf(resp *wire.Response) outcome {
	o := outcome{Finish: resp.Finish, Usage: resp.Usage, HasUsage: resp.HasUsage}
	for _, p := range resp.Parts {
		switch p.Kind {
		case wire.PartText:
			o.Text += p.Text
		case wire.PartReasoning:
			o.Reasoning += p.Text
		case wire.PartToolCall:
			o.Calls = append(o.Calls, call{ID: p.ToolCall.ID, Name: p.ToolCall.Name, Args: p.ToolCall.Arguments})
		}
	}
	return o
}

// same checks that the client got what upstream said: the text, the
// reasoning, each tool call's name and arguments (as JSON values: ids are
// made up where a format has none), the finish reason and the usage the
// client's format can show, field by field.
func same(t *testing.T, got, want outcome, c client) {
	t.Helper()
	if got.Text != want.Text {
		t.Errorf("text %q, upstream said %q", got.Text, want.Text)
	}
	if got.Reasoning != want.Reasoning {
		t.Errorf("reasoning %q, upstream said %q", got.Reasoning, want.Reasoning)
	}
	if len(got.Calls) != len(want.Calls) {
		t.Fatalf("%d tool calls, upstream made %d", len(got.Calls), len(want.Calls))
	}
	for i := range got.Calls {
		g, w := got.Calls[i], want.Calls[i]
		if g.Name != w.Name || !sameJSON(g.Args, w.Args) {
			t.Errorf("tool call %d is %s(%s), upstream called %s(%s)", i, g.Name, g.Args, w.Name, w.Args)
		}
		if g.ID == "" {
			t.Errorf("tool call %d has no id", i)
		}
	}
	if got.Finish != want.Finish {
		t.Errorf("finish %q, upstream said %q", got.Finish, want.Finish)
	}
	if !got.HasUsage {
		t.Fatal("the client got no usage")
	}
	if w := c.shown(want.Usage); got.Usage != w {
		t.Errorf("usage %+v, upstream said %+v", got.Usage, w)
	}
}

func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// created is the clock field of chat completions, which only the
// package's own tests can fix.
var created = regexp.MustCompile(`"created":\s?[0-9]+`)

func stable(b []byte) []byte { return created.ReplaceAll(b, []byte(`"created":1700000000`)) }

// testAnswer translates the upstream's complete answer.
func testAnswer(t *testing.T, name string, req *wire.Request, c client, f family) {
	body, err := os.ReadFile(filepath.Join("testdata", "translate", "answers", f.name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.adapter.DecodeResponse(body)
	if err != nil {
		t.Fatalf("decode %s answer: %v", f.name, err)
	}
	want := outcomeOf(resp)
	if want.Usage != f.usage || want.Finish != f.finish {
		t.Fatalf("%s answer decodes to usage %+v finish %q, want %+v %q", f.name, want.Usage, want.Finish, f.usage, f.finish)
	}
	out, err := c.adapter.EncodeResponse(resp, req)
	if err != nil {
		t.Fatalf("encode for %s: %v", c.name, err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, stable(out), "", "  "); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, out)
	}
	pretty.WriteByte('\n')
	golden.Bytes(t, name+".answer.golden", pretty.Bytes())

	back, err := c.adapter.DecodeResponse(out)
	if err != nil {
		t.Fatalf("%s cannot read its own answer: %v", c.name, err)
	}
	same(t, outcomeOf(back), want, c)
}

// testStream translates the upstream's stream and reads it back.
func testStream(t *testing.T, name string, req *wire.Request, c client, f family) {
	raw, err := os.ReadFile(filepath.Join("testdata", "translate", "streams", f.name+".sse"))
	if err != nil {
		t.Fatal(err)
	}
	var want outcome
	dec := f.adapter.NewStreamDecoder()
	enc := c.adapter.NewStreamEncoder(req)
	var out []byte
	for _, data := range sseData(raw) {
		err := dec.Decode(data, func(ev wire.Event) {
			want.add(ev)
			out = enc.Encode(out, ev)
		})
		if err != nil {
			t.Fatalf("decode %s stream: %v", f.name, err)
		}
	}
	out = enc.End(out)
	if want.Usage != f.usage || want.Finish != f.finish || len(want.Calls) != 1 || want.Text == "" {
		t.Fatalf("%s stream decodes to %+v, want usage %+v finish %q, text and one call", f.name, want, f.usage, f.finish)
	}
	golden.Bytes(t, name+".stream.golden", stable(out))

	got, units := readBack(t, c, out)
	if got.starts != 1 || got.ends != 1 {
		t.Errorf("the client stream starts %d times and finishes %d times", got.starts, got.ends)
	}
	same(t, got, want, c)
	if c.check != nil {
		c.check(t, units)
	}
}

// sseData splits an SSE stream into the data of its events.
func sseData(b []byte) [][]byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	var out [][]byte
	for _, ev := range bytes.Split(b, []byte("\n\n")) {
		var data [][]byte
		for _, line := range bytes.Split(ev, []byte("\n")) {
			if d, ok := bytes.CutPrefix(line, []byte("data:")); ok {
				data = append(data, bytes.TrimPrefix(d, []byte(" ")))
			}
		}
		if len(data) > 0 {
			out = append(out, bytes.Join(data, []byte("\n")))
		}
	}
	return out
}

// checkAnthropicStream checks what the SDKs' accumulators rely on:
// message_start first, content blocks opened in index order without gaps
// and each closed, message_delta then message_stop last.
func checkAnthropicStream(t *testing.T, units [][]byte) {
	t.Helper()
	var types []string
	next, open := 0, map[int]bool{}
	for _, u := range units {
		var ev struct {
			Type  string `json:"type"`
			Index int    `json:"index"`
		}
		if err := json.Unmarshal(u, &ev); err != nil {
			t.Fatal(err)
		}
		types = append(types, ev.Type)
		switch ev.Type {
		case "content_block_start":
			if ev.Index != next {
				t.Errorf("block %d started, want %d", ev.Index, next)
			}
			next++
			open[ev.Index] = true
		case "content_block_delta":
			if !open[ev.Index] {
				t.Errorf("delta for block %d, which is not open", ev.Index)
			}
		case "content_block_stop":
			delete(open, ev.Index)
		case "message_delta":
			if len(open) > 0 {
				t.Errorf("message_delta with blocks still open: %v", open)
			}
		}
	}
	if len(types) < 3 || types[0] != "message_start" || types[len(types)-2] != "message_delta" || types[len(types)-1] != "message_stop" {
		t.Errorf("event order %v", types)
	}
}

// checkResponsesStream checks that sequence numbers count from 0, the
// stream opens with response.created and ends with response.completed,
// and every item added is done.
func checkResponsesStream(t *testing.T, units [][]byte) {
	t.Helper()
	added := map[int]bool{}
	var last string
	for i, u := range units {
		var ev struct {
			Type           string `json:"type"`
			SequenceNumber int    `json:"sequence_number"`
			OutputIndex    int    `json:"output_index"`
		}
		if err := json.Unmarshal(u, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.SequenceNumber != i {
			t.Errorf("event %d has sequence_number %d", i, ev.SequenceNumber)
		}
		if i == 0 && ev.Type != "response.created" {
			t.Errorf("first event %s", ev.Type)
		}
		switch ev.Type {
		case "response.output_item.added":
			added[ev.OutputIndex] = true
		case "response.output_item.done":
			delete(added, ev.OutputIndex)
		}
		last = ev.Type
	}
	if last != "response.completed" || len(added) > 0 {
		t.Errorf("last event %s, items never done %v", last, added)
	}
}

// testError carries an upstream error to the client: the message of the
// vendor's error body in the client's error shape, and a stream cut by an
// error as the client format's own error event.
func testError(t *testing.T, req *wire.Request, c client, f family) {
	const msg = "Rate limit reached"
	if got := f.adapter.DecodeError([]byte(f.errorBody)); got != msg {
		t.Fatalf("%s error body reads %q", f.name, got)
	}
	body := c.adapter.RenderError(429, "UPSTREAM_RATE_LIMITED", msg)
	if got := c.adapter.DecodeError(body); got != msg {
		t.Errorf("%s error %s reads back as %q", c.name, body, got)
	}
	enc := c.adapter.NewStreamEncoder(req)
	out := enc.Encode(nil, wire.Event{Kind: wire.EventStart, ID: "up-1"})
	out = enc.Encode(out, wire.Event{Kind: wire.EventText, Text: "Let me"})
	out = enc.Encode(out, wire.Event{Kind: wire.EventError, Text: msg})
	out = enc.End(out)
	got, _ := readBack(t, c, out)
	if want := "Let me<error:" + msg + ">"; got.Text != want || got.ends != 0 {
		t.Errorf("cut stream reads %q with %d finishes, want %q and none", got.Text, got.ends, want)
	}
}

// readBack splits a client stream into its units (SSE events' data or
// array elements) and decodes them with the client's own adapter.
func readBack(t *testing.T, c client, out []byte) (outcome, [][]byte) {
	t.Helper()
	var units [][]byte
	if c.array {
		var elems []json.RawMessage
		if err := json.Unmarshal(out, &elems); err != nil {
			t.Fatalf("the stream is not a JSON array: %v: %s", err, out)
		}
		for _, e := range elems {
			units = append(units, e)
		}
	} else {
		units = sseData(out)
	}
	var got outcome
	dec := c.adapter.NewStreamDecoder()
	for _, u := range units {
		if err := dec.Decode(u, got.add); err != nil {
			t.Fatalf("%s cannot read its own stream: %v: %s", c.name, err, u)
		}
	}
	return got, units
}

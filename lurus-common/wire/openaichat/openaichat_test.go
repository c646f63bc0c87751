package openaichat

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/golden"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

func TestMain(m *testing.M) {
	now = func() time.Time { return time.Unix(1700000000, 0) }
	os.Exit(m.Run())
}

// upstreams are the provider types the writer serves, as the golden
// files name them.
var upstreams = []wire.Upstream{
	{Type: internalapi.TypeOpenAI, BaseURL: "https://api.openai.com/v1/", Secret: "sk-test", Model: "gpt-4o-2024-08-06"},
	{Type: internalapi.TypeOpenAICompatible, BaseURL: "http://vllm:8000/v1", Secret: "tok", Model: "qwen/qwen3"},
	{Type: internalapi.TypeAzureOpenAI, BaseURL: "https://res.openai.azure.com", Secret: "az-key", Model: "my gpt/4o"},
}

func read(t testing.TB, body []byte) (*wire.Request, error) {
	t.Helper()
	req := &wire.Request{Op: wire.OpGenerate}
	return req, Adapter{}.ReadRequest(body, req)
}

// dumpHTTP is an upstream request as a golden file shows it.
func dumpHTTP(hr *wire.HTTPRequest, err error) map[string]any {
	if err != nil {
		var u *wire.Unsupported
		if errors.As(err, &u) {
			return map[string]any{"unsupported": u.Field, "error": err.Error()}
		}
		return map[string]any{"error": err.Error()}
	}
	// RawMessage keeps the body's own field order in the golden file.
	return map[string]any{"url": hr.URL, "headers": hr.Headers, "body": json.RawMessage(hr.Body)}
}

// TestRequests reads each client body of testdata/requests into the
// canonical request, writes it for every provider type, and checks that
// what was written reads back as the same canonical request.
func TestRequests(t *testing.T) {
	golden.Files(t, "testdata/requests/*.json", func(t *testing.T, name string, body []byte) {
		req, err := read(t, body)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		golden.JSON(t, "requests/"+name+".canonical.golden", req)
		for _, u := range upstreams {
			hr, err := Adapter{}.WriteRequest(req, u)
			golden.JSON(t, "requests/"+name+"."+u.Type+".golden", dumpHTTP(hr, err))
			if err != nil {
				continue
			}
			back, err := read(t, hr.Body)
			if err != nil {
				t.Fatalf("%s: reading the written body: %v", u.Type, err)
			}
			if want := roundTripped(req, u); !reflect.DeepEqual(back, want) {
				g, _ := json.MarshalIndent(back, "", " ")
				w, _ := json.MarshalIndent(want, "", " ")
				t.Errorf("%s: round trip differs:\n got %s\nwant %s", u.Type, g, w)
			}
		}
	})
}

// roundTripped is what req reads as after WriteRequest for u: the
// upstream's model name, usage always asked on streams, reasoning left
// out of the history, top_k only where it was written.
func roundTripped(req *wire.Request, u wire.Upstream) *wire.Request {
	w := *req
	w.Model = u.Model
	w.IncludeUsage = req.Stream
	if u.Type != internalapi.TypeOpenAICompatible {
		w.TopK = nil
	}
	if len(w.Tools) == 0 {
		w.ToolChoice, w.ParallelToolCalls = wire.ToolChoice{}, nil
	}
	if w.ResponseFormat.Kind == wire.FormatJSONSchema && w.ResponseFormat.Name == "" {
		w.ResponseFormat.Name = "response"
	}
	w.Messages = nil
	for _, m := range req.Messages {
		var parts []wire.Part
		for _, p := range m.Parts {
			if p.Kind != wire.PartReasoning {
				parts = append(parts, p)
			}
		}
		w.Messages = append(w.Messages, wire.Message{Role: m.Role, Parts: parts})
	}
	return &w
}

func TestReadRequestErrors(t *testing.T) {
	cases := []struct {
		name, body string
		reason     apperr.Reason
	}{
		{"not an object", `[1]`, apperr.ReasonMalformedJSON},
		{"no model", `{"messages":[{"role":"user","content":"x"}]}`, apperr.ReasonMissingModel},
		{"no messages", `{"model":"m","messages":[]}`, apperr.ReasonInvalidArgument},
		{"bad role", `{"model":"m","messages":[{"role":"robot","content":"x"}]}`, apperr.ReasonInvalidArgument},
		{"negative cap", `{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":-1}`, apperr.ReasonInvalidArgument},
		{"ftp image", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}`, apperr.ReasonInvalidArgument},
		{"data url without base64", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}`, apperr.ReasonInvalidArgument},
		{"image in system", `{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}`, apperr.ReasonInvalidArgument},
		{"stop of numbers", `{"model":"m","messages":[{"role":"user","content":"x"}],"stop":[1]}`, apperr.ReasonInvalidArgument},
		{"bad tool choice", `{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"always"}`, apperr.ReasonInvalidArgument},
		{"schema without schema", `{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"a"}}}`, apperr.ReasonInvalidArgument},
		{"temperature as string", `{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"hot"}`, apperr.ReasonInvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := read(t, []byte(c.body))
			if apperr.ReasonOf(err) != c.reason {
				t.Fatalf("got %v, want reason %s", err, c.reason)
			}
		})
	}
}

// TestRefusedDefaults: fields at their default ask for nothing and are
// not refused; set, they are.
func TestRefusedDefaults(t *testing.T) {
	base := `{"model":"m","messages":[{"role":"user","content":"x"}],`
	for _, c := range []struct {
		field, off, on string
	}{
		{"logprobs", "false", "true"},
		{"presence_penalty", "0", "0.1"},
		{"frequency_penalty", "0.0", "-1"},
		{"logit_bias", "{}", `{"1":2}`},
		{"modalities", `["text"]`, `["audio"]`},
		{"top_logprobs", "null", "0.5"},
		{"functions", "[]", `[{"name":"f"}]`},
	} {
		for _, v := range []string{c.off, c.on} {
			req, err := read(t, []byte(base+`"`+c.field+`":`+v+`}`))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(req.Refused) > 0, v == c.on; got != want {
				t.Errorf("%s=%s: refused %v, want %v", c.field, v, req.Refused, want)
			}
		}
	}
}

func TestWriteRefuses(t *testing.T) {
	u := upstreams[0]
	user := []wire.Message{{Role: wire.RoleUser, Parts: []wire.Part{{Kind: wire.PartText, Text: "x"}}}}
	k := int64(3)
	cases := []struct {
		name  string
		req   wire.Request
		field string
	}{
		{"refused field", wire.Request{Messages: user, Refused: []string{"thinking", "x"}}, "thinking"},
		{"candidates", wire.Request{Messages: user, Candidates: 2}, "n"},
		{"top_k to openai", wire.Request{Messages: user, TopK: &k}, "top_k"},
		{"image in tool result", wire.Request{Messages: []wire.Message{{Role: wire.RoleTool, Parts: []wire.Part{{Kind: wire.PartToolResult,
			ToolResult: &wire.ToolResult{CallID: "c", Content: []wire.Part{{Kind: wire.PartImage, Image: &wire.Image{URL: "https://x/y.png"}}}}}}}}}, "image in tool result"},
		{"image without media type", wire.Request{Messages: []wire.Message{{Role: wire.RoleUser, Parts: []wire.Part{{Kind: wire.PartImage, Image: &wire.Image{Data: "AAAA"}}}}}}, "image without a media type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Adapter{}.WriteRequest(&c.req, u)
			var un *wire.Unsupported
			if !errors.As(err, &un) || un.Field != c.field || un.Target != "OpenAI" {
				t.Fatalf("got %v, want unsupported %s", err, c.field)
			}
		})
	}
	if _, err := (Adapter{}).WriteRequest(&wire.Request{Op: wire.OpEmbed}, u); !errors.Is(err, ErrNotGenerate) {
		t.Errorf("embed: %v", err)
	}
	if _, err := (Adapter{}).WriteRequest(&wire.Request{Messages: user}, wire.Upstream{Type: internalapi.TypeGemini}); !errors.Is(err, ErrUnknownType) {
		t.Errorf("gemini: %v", err)
	}
}

// TestAzureURL: the deployment is path-escaped and the api-version set.
func TestAzureURL(t *testing.T) {
	for _, c := range []struct{ model, ver, want string }{
		{"gpt-4o", "", "https://r.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"},
		{"a/../b?x=1", "2025-01-01-preview", "https://r.openai.azure.com/openai/deployments/a%2F..%2Fb%3Fx=1/chat/completions?api-version=2025-01-01-preview"},
	} {
		hr, err := Adapter{}.WriteRequest(&wire.Request{Messages: []wire.Message{{Role: wire.RoleUser}}},
			wire.Upstream{Type: internalapi.TypeAzureOpenAI, BaseURL: "https://r.openai.azure.com/", APIVersion: c.ver, Model: c.model, Secret: "k"})
		if err != nil {
			t.Fatal(err)
		}
		if hr.URL != c.want || hr.Headers[0] != (wire.Header{Key: "api-key", Value: "k"}) {
			t.Errorf("got %s %v, want %s", hr.URL, hr.Headers, c.want)
		}
	}
}

// sseData returns the data of each SSE event of a transcript.
func sseData(t testing.TB, transcript []byte) [][]byte {
	t.Helper()
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(transcript))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if d, ok := bytes.CutPrefix(sc.Bytes(), []byte("data:")); ok {
			out = append(out, bytes.Clone(bytes.TrimSpace(d)))
		}
	}
	return out
}

var kindNames = [...]string{
	wire.EventStart: "start", wire.EventText: "text", wire.EventReasoning: "reasoning",
	wire.EventToolCall: "tool_call", wire.EventToolArgs: "tool_args", wire.EventFinish: "finish",
	wire.EventUsage: "usage", wire.EventError: "error",
}

// eventDump is an event as the golden files show it.
type eventDump struct {
	Kind       string            `json:"kind"`
	ID         string            `json:"id,omitempty"`
	Model      string            `json:"model,omitempty"`
	Index      *int              `json:"index,omitempty"`
	Text       string            `json:"text,omitempty"`
	ToolCallID string            `json:"tool_call_id,omitempty"`
	ToolName   string            `json:"tool_name,omitempty"`
	Finish     wire.FinishReason `json:"finish,omitempty"`
	Usage      *wire.Usage       `json:"usage,omitempty"`
}

func dumpEvents(evs []wire.Event) []eventDump {
	out := make([]eventDump, len(evs))
	for i, ev := range evs {
		d := eventDump{Kind: kindNames[ev.Kind], ID: ev.ID, Model: ev.Model, Text: ev.Text,
			ToolCallID: ev.ToolCallID, ToolName: ev.ToolName, Finish: ev.Finish}
		if ev.Kind == wire.EventToolCall || ev.Kind == wire.EventToolArgs {
			d.Index = &ev.Index
		}
		if ev.Kind == wire.EventUsage {
			d.Usage = &ev.Usage
		}
		out[i] = d
	}
	return out
}

func decodeStream(t testing.TB, transcript []byte) []wire.Event {
	t.Helper()
	dec := Adapter{}.NewStreamDecoder()
	var evs []wire.Event
	for _, d := range sseData(t, transcript) {
		if err := dec.Decode(d, func(ev wire.Event) { evs = append(evs, ev) }); err != nil {
			t.Fatalf("decode %s: %v", d, err)
		}
	}
	return evs
}

func encodeStream(evs []wire.Event, req *wire.Request) []byte {
	enc := Adapter{}.NewStreamEncoder(req)
	var out []byte
	for _, ev := range evs {
		out = enc.Encode(out, ev)
	}
	return enc.End(out)
}

// TestStreams decodes each upstream transcript of testdata/streams into
// canonical events and encodes them as the client's stream, with and
// without include_usage; the client stream decodes to the same events.
func TestStreams(t *testing.T) {
	golden.Files(t, "testdata/streams/*.sse", func(t *testing.T, name string, transcript []byte) {
		evs := decodeStream(t, transcript)
		golden.JSON(t, "streams/"+name+".events.golden", dumpEvents(evs))
		for _, usage := range []bool{true, false} {
			req := &wire.Request{Model: "client-model", Stream: true, IncludeUsage: usage}
			out := encodeStream(evs, req)
			suffix := ".client.sse.golden"
			if !usage {
				suffix = ".client_nousage.sse.golden"
			}
			golden.Bytes(t, "streams/"+name+suffix, out)
			assertChunks(t, out, usage)
			back := decodeStream(t, out)
			if want := reencoded(evs, usage); !reflect.DeepEqual(dumpEvents(back), dumpEvents(want)) {
				t.Errorf("usage=%v: client stream decodes to\n%+v\nwant\n%+v", usage, dumpEvents(back), dumpEvents(want))
			}
		}
	})
}

// reencoded is what the events of an upstream stream read as from the
// client stream: the client's model, the usage only when asked for and
// then last, nothing after an error.
func reencoded(evs []wire.Event, includeUsage bool) []wire.Event {
	var out []wire.Event
	var usage *wire.Usage
	for _, ev := range evs {
		switch ev.Kind {
		case wire.EventStart:
			ev.Model = "client-model"
		case wire.EventUsage:
			u := ev.Usage // cache writes included: nothing is lost
			usage = &u
			continue
		case wire.EventError:
			ev.Text = "The server had an error while processing your request."
			return append(out, ev)
		}
		out = append(out, ev)
	}
	if includeUsage && usage != nil {
		out = append(out, wire.Event{Kind: wire.EventUsage, Usage: *usage})
	}
	return out
}

// assertChunks checks each chunk of a client stream against what the
// OpenAI SDKs rely on: the object, one choice at index 0 (or none on the
// usage chunk), usage present (null) on every chunk exactly when the
// client asked for it, and [DONE] last.
func assertChunks(t *testing.T, out []byte, includeUsage bool) {
	t.Helper()
	data := sseData(t, out)
	if len(data) == 0 || string(data[len(data)-1]) != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %s", out)
	}
	for _, d := range data[:len(data)-1] {
		var c map[string]json.RawMessage
		if err := json.Unmarshal(d, &c); err != nil {
			t.Fatalf("chunk is not JSON: %s", d)
		}
		if _, isErr := c["error"]; isErr {
			continue
		}
		if string(c["object"]) != `"chat.completion.chunk"` || string(c["model"]) != `"client-model"` {
			t.Errorf("chunk head: %s", d)
		}
		if _, has := c["usage"]; has != includeUsage {
			t.Errorf("usage present %v, want %v: %s", has, includeUsage, d)
		}
	}
}

// TestResponses decodes each complete answer of testdata/responses and
// encodes it for the client.
func TestResponses(t *testing.T) {
	golden.Files(t, "testdata/responses/*.json", func(t *testing.T, name string, body []byte) {
		resp, err := Adapter{}.DecodeResponse(body)
		if err != nil {
			t.Fatal(err)
		}
		golden.JSON(t, "responses/"+name+".canonical.golden", resp)
		out, err := Adapter{}.EncodeResponse(resp, &wire.Request{Model: "client-model"})
		if err != nil {
			t.Fatal(err)
		}
		golden.JSONBytes(t, "responses/"+name+".client.golden", out)
		back, err := Adapter{}.DecodeResponse(out)
		if err != nil {
			t.Fatal(err)
		}
		want := *resp
		want.Model = "client-model"
		if !reflect.DeepEqual(back, &want) {
			t.Errorf("re-decoded answer differs:\n%+v\n%+v", back, &want)
		}
	})
}

func TestReadUsage(t *testing.T) {
	for _, c := range []struct {
		data string
		want wire.Usage
		ok   bool
	}{
		{`{"choices":[],"usage":null}`, wire.Usage{}, false},
		{`{"choices":[{"delta":{"content":"usage"}}]}`, wire.Usage{}, false},
		{`{"usage":{"prompt_tokens":19,"completion_tokens":10,"prompt_tokens_details":{"cached_tokens":6,"cache_write_tokens":3},"completion_tokens_details":{"reasoning_tokens":4}}}`,
			wire.Usage{Prompt: 19, Completion: 10, Cached: 6, CacheWrite: 3, Reasoning: 4}, true},
		{`{"usage":{"prompt_tokens":5,"completion_tokens":0,"total_tokens":5}}`, wire.Usage{Prompt: 5}, true},
	} {
		got, ok := Adapter{}.ReadUsage([]byte(c.data))
		if got != c.want || ok != c.ok {
			t.Errorf("%s: got %+v %v, want %+v %v", c.data, got, ok, c.want, c.ok)
		}
	}
}

// TestRenderErrorMatchesGateway renders every case of the gateway's own
// OpenAI error golden file and expects the very same bytes, so a
// translated error looks like any other error on an OpenAI route.
func TestRenderErrorMatchesGateway(t *testing.T) {
	raw, err := os.ReadFile("../../../gateway-service/internal/biz/testdata/errors/openai.golden")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	for _, line := range lines {
		head, body, _ := strings.Cut(line, " ")
		if head == "stream:" {
			want, err := strconv.Unquote(body)
			if err != nil {
				t.Fatal(err)
			}
			var e errorBody
			_ = json.Unmarshal(sseData(t, []byte(want))[0], &e)
			enc := Adapter{}.NewStreamEncoder(&wire.Request{Model: "m"})
			if got := enc.Encode(nil, wire.Event{Kind: wire.EventError, Text: e.Error.Message}); string(got) != want {
				t.Errorf("stream error:\n got %q\nwant %q", got, want)
			}
			if got := enc.End(nil); len(got) != 0 {
				t.Errorf("End after an error wrote %q", got)
			}
			continue
		}
		status, _ := strconv.Atoi(head)
		var e errorBody
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Fatal(err)
		}
		if got := (Adapter{}).RenderError(status, e.Error.Code, e.Error.Message); string(got) != body {
			t.Errorf("%d:\n got %s\nwant %s", status, got, body)
		}
		if got := (Adapter{}).DecodeError([]byte(body)); got != e.Error.Message {
			t.Errorf("DecodeError = %q, want %q", got, e.Error.Message)
		}
	}
}

func TestDecodeError(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`, "Rate limit reached"},
		{`{"error":"model not loaded"}`, "model not loaded"},
		{`{"message":"bad gateway","status":502}`, "bad gateway"},
		{`<html>502</html>`, ""},
		{`{"error":{"code":500}}`, ""},
		{`{"error":"` + strings.Repeat("é", 600) + `"}`, strings.Repeat("é", 512)},
	} {
		if got := (Adapter{}).DecodeError([]byte(c.body)); got != c.want {
			t.Errorf("%.40s: got %.40q, want %.40q", c.body, got, c.want)
		}
	}
}

// TestCacheWritesReachTheClient: an upstream that counts cache writes
// apart (Anthropic) must not have them vanish for a chat client, in the
// answer or in the stream's usage chunk.
func TestCacheWritesReachTheClient(t *testing.T) {
	u := wire.Usage{Prompt: 365, Completion: 89, Cached: 300, CacheWrite: 40}
	req := &wire.Request{Model: "m", Stream: true, IncludeUsage: true}
	out, err := Adapter{}.EncodeResponse(&wire.Response{Parts: []wire.Part{{Kind: wire.PartText, Text: "hi"}},
		Finish: wire.FinishStop, Usage: u, HasUsage: true}, req)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := (Adapter{}).ReadUsage(out); !ok || got != u {
		t.Errorf("answer usage reads %+v, want %+v", got, u)
	}
	stream := encodeStream([]wire.Event{{Kind: wire.EventStart}, {Kind: wire.EventText, Text: "hi"},
		{Kind: wire.EventFinish, Finish: wire.FinishStop}, {Kind: wire.EventUsage, Usage: u}}, req)
	var last wire.Usage
	for _, d := range sseData(t, stream) {
		if got, ok := (Adapter{}).ReadUsage(d); ok {
			last = got
		}
	}
	if last != u {
		t.Errorf("stream usage reads %+v, want %+v", last, u)
	}
}

package anthropic

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/golden"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

var testUpstream = wire.Upstream{Type: internalapi.TypeAnthropic, BaseURL: "https://api.anthropic.com/", Secret: "sk-ant-test", Model: "claude-up"}

// opFor is the op the route sets for a request file.
func opFor(name string) wire.Op {
	if strings.HasPrefix(name, "count_tokens") {
		return wire.OpCountTokens
	}
	return wire.OpGenerate
}

// upstreamDump is how a written upstream request shows in golden files.
type upstreamDump struct {
	URL     string
	Headers []wire.Header
	Body    json.RawMessage
}

// TestRequestGolden reads each client request under testdata/requests,
// dumps the canonical request, writes it upstream (when this format can
// express it) and dumps that, or the refusal.
func TestRequestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/requests/*.json")
	if err != nil || len(files) == 0 {
		t.Fatal("no request files", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			req := &wire.Request{Op: opFor(name)}
			if err := (Adapter{}).ReadRequest(body, req); err != nil {
				t.Fatal(err)
			}
			golden.JSON(t, "golden/requests/"+name+".canonical.json", req)
			hr, err := Adapter{}.WriteRequest(req, testUpstream)
			if err != nil {
				var u *wire.Unsupported
				if !errors.As(err, &u) {
					t.Fatal(err)
				}
				golden.Bytes(t, "golden/requests/"+name+".upstream.txt", []byte(err.Error()+"\n"))
				return
			}
			golden.JSON(t, "golden/requests/"+name+".upstream.json", upstreamDump{hr.URL, hr.Headers, hr.Body})
		})
	}
}

// TestRequestRoundTrip: reading what the writer wrote gives back the
// canonical request (under the upstream's model name), for every request
// file this format can express, minus reasoning, which the writer drops.
func TestRequestRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/requests/*.json")
	n := 0
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		body, _ := os.ReadFile(f)
		req := &wire.Request{Op: opFor(name)}
		if err := (Adapter{}).ReadRequest(body, req); err != nil {
			t.Fatal(err)
		}
		hr, err := Adapter{}.WriteRequest(req, testUpstream)
		if err != nil {
			continue
		}
		n++
		back := &wire.Request{Op: req.Op}
		if err := (Adapter{}).ReadRequest(hr.Body, back); err != nil {
			t.Fatalf("%s: reading the written body: %v", name, err)
		}
		want := *req
		want.Model = testUpstream.Model
		want.Messages = withoutReasoning(req.Messages)
		if !reflect.DeepEqual(normalize(&want), normalize(back)) {
			t.Errorf("%s: round trip differs\n got %s\nwant %s", name, mustJSON(back), mustJSON(&want))
		}
	}
	if n < 3 {
		t.Fatalf("only %d request files round-tripped", n)
	}
}

func withoutReasoning(msgs []wire.Message) []wire.Message {
	var out []wire.Message
	for _, m := range msgs {
		var parts []wire.Part
		for _, p := range m.Parts {
			if p.Kind != wire.PartReasoning {
				parts = append(parts, p)
			}
		}
		if len(parts) > 0 {
			out = append(out, wire.Message{Role: m.Role, Parts: parts})
		}
	}
	return out
}

// normalize makes nil and empty slices compare equal.
func normalize(r *wire.Request) string { return mustJSON(r) }

// TestReadRequest covers the mapping rules one at a time.
func TestReadRequest(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		check   func(t *testing.T, r *wire.Request)
		refused []string
		errSub  string
	}{
		{name: "tool choice none", body: `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"none"}}`,
			check: func(t *testing.T, r *wire.Request) {
				if r.ToolChoice.Mode != wire.ToolChoiceNone || r.ParallelToolCalls != nil {
					t.Errorf("tool choice = %+v parallel %v", r.ToolChoice, r.ParallelToolCalls)
				}
			}},
		{name: "tool choice named, parallel allowed", body: `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"f","disable_parallel_tool_use":false}}`,
			check: func(t *testing.T, r *wire.Request) {
				if r.ToolChoice != (wire.ToolChoice{Mode: wire.ToolChoiceNamed, Name: "f"}) || r.ParallelToolCalls == nil || !*r.ParallelToolCalls {
					t.Errorf("tool choice = %+v parallel %v", r.ToolChoice, r.ParallelToolCalls)
				}
			}},
		{name: "tool result names its call", body: `{"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{"a":1}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1"}]}]}`,
			check: func(t *testing.T, r *wire.Request) {
				tr := r.Messages[1].Parts[0].ToolResult
				if r.Messages[1].Role != wire.RoleTool || tr.Name != "f" || tr.CallID != "t1" || tr.Content != nil {
					t.Errorf("tool result = %+v", r.Messages[1])
				}
				if r.Messages[0].Parts[0].ToolCall.Arguments != `{"a":1}` {
					t.Errorf("arguments = %q", r.Messages[0].Parts[0].ToolCall.Arguments)
				}
			}},
		{name: "structured output (beta name)", body: `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"output_format":{"type":"json_schema","schema":{"type":"object"}}}`,
			check: func(t *testing.T, r *wire.Request) {
				if r.ResponseFormat.Kind != wire.FormatJSONSchema || string(r.ResponseFormat.Schema) != `{"type":"object"}` || !r.ResponseFormat.Strict {
					t.Errorf("response format = %+v", r.ResponseFormat)
				}
			}},
		{name: "null fields are absent", body: `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"temperature":null,"metadata":null,"container":null}`,
			check: func(t *testing.T, r *wire.Request) {
				if r.Temperature != nil {
					t.Error("temperature set")
				}
			}},
		{name: "unknown field refused", body: `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"container":"c1","context_management":{}}`,
			refused: []string{"container", "context_management"}},
		{name: "file image refused", body: `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f1"}}]}]}`,
			refused: []string{"file_id"}},
		{name: "adaptive thinking refused", body: `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"thinking":{"type":"adaptive"}}`,
			refused: []string{"thinking"}},
		{name: "not an object", body: `[1]`, errSub: "not a JSON object"},
		{name: "no messages", body: `{"model":"m","max_tokens":5}`, errSub: "messages is required"},
		{name: "bad role", body: `{"model":"m","max_tokens":5,"messages":[{"role":"system","content":"x"}]}`, errSub: "role"},
		{name: "bad max_tokens", body: `{"model":"m","max_tokens":"5","messages":[]}`, errSub: "max_tokens has the wrong type"},
		{name: "tool_use from user", body: `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_use","id":"a","name":"f","input":{}}]}]}`, errSub: "assistant"},
		{name: "tool_use input not object", body: `{"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"f","input":[1]}]}]}`, errSub: "object"},
		{name: "bad tool choice", body: `{"model":"m","max_tokens":5,"messages":[],"tool_choice":{"type":"sometimes"}}`, errSub: "tool_choice.type"},
		{name: "system image", body: `{"model":"m","max_tokens":5,"messages":[],"system":[{"type":"image"}]}`, errSub: "system blocks"},
		{name: "base64 image without data", body: `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png"}}]}]}`, errSub: "media_type and data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &wire.Request{}
			err := Adapter{}.ReadRequest([]byte(tt.body), r)
			if tt.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errSub) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.errSub)
				}
				if k := apperr.KindOf(err); k != apperr.KindInvalid {
					t.Errorf("error kind = %v, want invalid (400)", k)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.Refused, tt.refused) {
				t.Errorf("refused = %q, want %q", r.Refused, tt.refused)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func body(t *testing.T, hr *wire.HTTPRequest) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(hr.Body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func boolp(b bool) *bool { return &b }

// TestWriteRequest covers what only canonical requests from other formats
// contain: tool messages one per result, data URLs, reasoning, and the
// refusals.
func TestWriteRequest(t *testing.T) {
	user := func(s string) wire.Message {
		return wire.Message{Role: wire.RoleUser, Parts: []wire.Part{{Kind: wire.PartText, Text: s}}}
	}
	result := func(id, s string) wire.Message {
		return wire.Message{Role: wire.RoleTool, Parts: []wire.Part{{Kind: wire.PartToolResult, ToolResult: &wire.ToolResult{CallID: id, Content: []wire.Part{{Kind: wire.PartText, Text: s}}}}}}
	}
	call := func(id, args string) wire.Part {
		return wire.Part{Kind: wire.PartToolCall, ToolCall: &wire.ToolCall{ID: id, Name: "f", Arguments: args}}
	}
	tests := []struct {
		name string
		req  wire.Request
		want string // the body's messages (or the whole body with "{")
		err  string
	}{
		{name: "tool messages merge into one user turn, results first",
			req: wire.Request{MaxOutputTokens: 9, Messages: []wire.Message{
				user("go"),
				{Role: wire.RoleAssistant, Parts: []wire.Part{{Kind: wire.PartReasoning, Text: "hmm"}, call("c1", `{"x": 1}`), call("c2", "")}},
				result("c1", "one"), user("and?"), result("c2", ""),
			}},
			want: `[{"role":"user","content":[{"type":"text","text":"go"}]},{"role":"assistant","content":[{"type":"tool_use","id":"c1","name":"f","input":{"x":1}},{"type":"tool_use","id":"c2","name":"f","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"c1","content":"one"},{"type":"tool_result","tool_use_id":"c2"},{"type":"text","text":"and?"}]}]`},
		{name: "consecutive users merge, empty text and reasoning-only turns vanish",
			req: wire.Request{MaxOutputTokens: 9, Messages: []wire.Message{
				user("a"), {Role: wire.RoleAssistant, Parts: []wire.Part{{Kind: wire.PartReasoning, Text: "x"}}}, user(""), user("b"),
			}},
			want: `[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]`},
		{name: "data URL becomes base64, https stays a URL",
			req: wire.Request{MaxOutputTokens: 9, Messages: []wire.Message{{Role: wire.RoleUser, Parts: []wire.Part{
				{Kind: wire.PartImage, Image: &wire.Image{URL: "data:image/jpeg;base64,/9j/4A=="}},
				{Kind: wire.PartImage, Image: &wire.Image{URL: "https://x.test/a.png", Detail: "low"}},
			}}}},
			want: `[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/4A=="}},{"type":"image","source":{"type":"url","url":"https://x.test/a.png"}}]}]`},
		{name: "parallel off with auto choice, no system, tool without schema",
			req: wire.Request{MaxOutputTokens: 9, Messages: []wire.Message{user("x")}, ParallelToolCalls: boolp(false),
				Tools: []wire.Tool{{Name: "f"}}, System: []wire.Part{{Kind: wire.PartText, Text: ""}}},
			want: `{"model":"claude-up","max_tokens":9,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"auto","disable_parallel_tool_use":true}}`},
		{name: "tool choice without tools is left out",
			req:  wire.Request{MaxOutputTokens: 9, Messages: []wire.Message{user("x")}, ToolChoice: wire.ToolChoice{Mode: wire.ToolChoiceRequired}},
			want: `{"model":"claude-up","max_tokens":9,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`},
		{name: "temperature above Anthropic's range", req: wire.Request{MaxOutputTokens: 9, Temperature: func() *float64 { v := 1.5; return &v }()},
			err: "temperature must be between 0 and 1"},
		{name: "no output cap", req: wire.Request{Messages: []wire.Message{user("x")}}, err: ErrNoOutputCap.Error()},
		{name: "n", req: wire.Request{MaxOutputTokens: 9, Candidates: 2}, err: "parameter n is not supported by anthropic models"},
		{name: "json mode", req: wire.Request{MaxOutputTokens: 9, ResponseFormat: wire.ResponseFormat{Kind: wire.FormatJSON}}, err: "parameter response_format"},
		{name: "refused field", req: wire.Request{MaxOutputTokens: 9, Refused: []string{"logprobs", "seed"}}, err: "parameter logprobs"},
		{name: "embeddings", req: wire.Request{Op: wire.OpEmbed, Input: []string{"x"}}, err: "parameter input"},
		{name: "broken arguments in history",
			req: wire.Request{MaxOutputTokens: 9, Messages: []wire.Message{{Role: wire.RoleAssistant, Parts: []wire.Part{call("c", `{"x":`)}}}},
			err: "not a JSON object"},
		{name: "file URL image", req: wire.Request{MaxOutputTokens: 9, Messages: []wire.Message{{Role: wire.RoleUser, Parts: []wire.Part{{Kind: wire.PartImage, Image: &wire.Image{URL: "file:///etc/passwd"}}}}}},
			err: "http(s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hr, err := Adapter{}.WriteRequest(&tt.req, testUpstream)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := string(hr.Body)
			if !strings.HasPrefix(tt.want, "{") {
				got = mustJSON(body(t, hr)["messages"])
				var w any
				_ = json.Unmarshal([]byte(tt.want), &w)
				tt.want = mustJSON(w)
			}
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestWriteRequestTarget(t *testing.T) {
	req := &wire.Request{Op: wire.OpCountTokens, Messages: []wire.Message{{Role: wire.RoleUser, Parts: []wire.Part{{Kind: wire.PartText, Text: "x"}}}},
		Temperature: new(float64), Stream: true, MaxOutputTokens: 7}
	u := testUpstream
	u.APIVersion = "2024-01-01"
	hr, err := Adapter{}.WriteRequest(req, u)
	if err != nil {
		t.Fatal(err)
	}
	if hr.URL != "https://api.anthropic.com/v1/messages/count_tokens" {
		t.Errorf("url = %s", hr.URL)
	}
	want := []wire.Header{{Key: "Content-Type", Value: "application/json"}, {Key: "x-api-key", Value: "sk-ant-test"}, {Key: "anthropic-version", Value: "2024-01-01"}}
	if !reflect.DeepEqual(hr.Headers, want) {
		t.Errorf("headers = %v", hr.Headers)
	}
	// count_tokens rejects the sampling fields and max_tokens
	if got := string(hr.Body); got != `{"model":"claude-up","messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}` {
		t.Errorf("body = %s", got)
	}
	u.Type = internalapi.TypeOpenAI
	if _, err := (Adapter{}).WriteRequest(req, u); err == nil {
		t.Error("wrote for an openai provider")
	}
}

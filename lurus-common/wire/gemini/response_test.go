package gemini

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/golden"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// TestResponseGolden decodes each upstream answer and encodes it again
// for a Gemini client of the matching operation.
func TestResponseGolden(t *testing.T) {
	cases := []struct {
		file  string
		op    wire.Op
		batch bool
	}{
		{"generate.json", wire.OpGenerate, false},
		{"function_call.json", wire.OpGenerate, false},
		{"safety.json", wire.OpGenerate, false},
		{"embed.json", wire.OpEmbed, false},
		{"batch_embed.json", wire.OpEmbed, true},
		{"count.json", wire.OpCountTokens, false},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			resp, err := Adapter{}.DecodeResponse(readFile(t, "responses/"+c.file))
			if err != nil {
				t.Fatal(err)
			}
			goldenCanonical(t, "responses/"+c.file+".canonical.golden", resp)
			out, err := Adapter{Batch: c.batch}.EncodeResponse(resp, &wire.Request{Op: c.op, Model: "client-model"})
			if err != nil {
				t.Fatal(err)
			}
			golden.Bytes(t, "responses/"+c.file+".client.golden", append(out, '\n'))
			again, err := Adapter{}.DecodeResponse(out)
			if err != nil {
				t.Fatal(err)
			}
			if c.op == wire.OpGenerate {
				// Made-up ids are the decoder's; compare what the client sees.
				for _, r := range []*wire.Response{resp, again} {
					for i := range r.Parts {
						if r.Parts[i].ToolCall != nil {
							r.Parts[i].ToolCall.ID = ""
						}
					}
				}
			}
			if !reflect.DeepEqual(again, resp) {
				t.Fatalf("client answer decodes to %+v, want %+v", again, resp)
			}
		})
	}
}

func TestUsageMapping(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want wire.Usage
		ok   bool
	}{
		{"thoughts and cache", `{"usageMetadata":{"promptTokenCount":11,"candidatesTokenCount":7,"totalTokenCount":50,"cachedContentTokenCount":4,"thoughtsTokenCount":32}}`,
			wire.Usage{Prompt: 11, Completion: 39, Cached: 4, Reasoning: 32}, true},
		{"partial", `{"usageMetadata":{"promptTokenCount":8,"totalTokenCount":8}}`, wire.Usage{Prompt: 8}, true},
		{"tool use prompt", `{"usageMetadata":{"promptTokenCount":8,"toolUsePromptTokenCount":100,"candidatesTokenCount":1}}`, wire.Usage{Prompt: 108, Completion: 1}, true},
		{"none", `{"candidates":[]}`, wire.Usage{}, false},
		{"not json", `data: x`, wire.Usage{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, ok := Adapter{}.ReadUsage([]byte(c.doc))
			if ok != c.ok || u != c.want {
				t.Fatalf("ReadUsage = %+v, %v; want %+v, %v", u, ok, c.want, c.ok)
			}
		})
	}
	// Writing canonical usage never counts reasoning twice.
	g := geminiUsage(wire.Usage{Prompt: 100, Completion: 30, Cached: 60, CacheWrite: 10, Reasoning: 20})
	want := gUsage{PromptTokenCount: 100, CandidatesTokenCount: 10, TotalTokenCount: 130, CachedContentTokenCount: 60, ThoughtsTokenCount: 20}
	if *g != want {
		t.Fatalf("geminiUsage = %+v, want %+v", *g, want)
	}
	if back := canonicalUsage(g); back != (wire.Usage{Prompt: 100, Completion: 30, Cached: 60, Reasoning: 20}) {
		t.Fatalf("round trip = %+v", back)
	}
}

func TestFinishReasons(t *testing.T) {
	cases := []struct {
		in    string
		tools bool
		want  wire.FinishReason
	}{
		{"STOP", false, wire.FinishStop},
		{"STOP", true, wire.FinishToolCalls},
		{"MAX_TOKENS", true, wire.FinishLength},
		{"SAFETY", false, wire.FinishContentFilter},
		{"RECITATION", false, wire.FinishContentFilter},
		{"BLOCKLIST", false, wire.FinishContentFilter},
		{"PROHIBITED_CONTENT", false, wire.FinishContentFilter},
		{"SPII", false, wire.FinishContentFilter},
		{"MALFORMED_FUNCTION_CALL", false, wire.FinishError},
		{"OTHER", false, wire.FinishStop},
	}
	for _, c := range cases {
		if got := finishReason(c.in, c.tools); got != c.want {
			t.Errorf("finishReason(%s, %v) = %s, want %s", c.in, c.tools, got, c.want)
		}
	}
	for f, want := range map[wire.FinishReason]string{
		wire.FinishStop: "STOP", wire.FinishToolCalls: "STOP", wire.FinishLength: "MAX_TOKENS",
		wire.FinishContentFilter: "SAFETY", wire.FinishError: "OTHER",
	} {
		if got := geminiFinish(f); got != want {
			t.Errorf("geminiFinish(%s) = %s, want %s", f, got, want)
		}
	}
}

// TestRenderErrorMatchesGateway checks the shapes against lines of
// gateway-service/internal/biz/testdata/errors/gemini.golden.
func TestRenderErrorMatchesGateway(t *testing.T) {
	cases := []struct {
		status          int
		reason, message string
		want            string
	}{
		{400, "MALFORMED_JSON", "request body is not valid JSON", `{"error":{"code":400,"message":"request body is not valid JSON","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"MALFORMED_JSON","domain":"lurus.cn"}]}}`},
		{403, "MODEL_NOT_ALLOWED", `key may not use model "gpt-4o"`, `{"error":{"code":403,"message":"key may not use model \"gpt-4o\"","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"MODEL_NOT_ALLOWED","domain":"lurus.cn"}]}}`},
		{402, "INSUFFICIENT_BALANCE", "balance too low", `{"error":{"code":402,"message":"balance too low","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"INSUFFICIENT_BALANCE","domain":"lurus.cn"}]}}`},
		{413, "BODY_TOO_LARGE", "request body exceeds 33554432 bytes", `{"error":{"code":413,"message":"request body exceeds 33554432 bytes","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"BODY_TOO_LARGE","domain":"lurus.cn"}]}}`},
		{504, "UPSTREAM_TIMEOUT", "upstream did not answer in time", `{"error":{"code":504,"message":"upstream did not answer in time","status":"DEADLINE_EXCEEDED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"UPSTREAM_TIMEOUT","domain":"lurus.cn"}]}}`},
		{500, "INTERNAL", "internal error", `{"error":{"code":500,"message":"internal error","status":"INTERNAL","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"INTERNAL","domain":"lurus.cn"}]}}`},
	}
	for _, c := range cases {
		if got := string(Adapter{}.RenderError(c.status, c.reason, c.message)); got != c.want {
			t.Errorf("RenderError(%d) =\n%s\nwant\n%s", c.status, got, c.want)
		}
	}
}

func TestDecodeError(t *testing.T) {
	cases := map[string]string{
		`{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}`: "Resource has been exhausted",
		`[{"error":{"code":400,"message":"API key not valid","status":"INVALID_ARGUMENT"}}]`:           "API key not valid",
		`<html>bad gateway</html>`: "",
	}
	for body, want := range cases {
		if got := (Adapter{}).DecodeError([]byte(body)); got != want {
			t.Errorf("DecodeError(%s) = %q, want %q", body, got, want)
		}
	}
}

// TestRoundTrip: what the Gemini format can express survives writing
// for Gemini and reading back.
func TestRoundTrip(t *testing.T) {
	text := func(s string) wire.Part { return wire.Part{Kind: wire.PartText, Text: s} }
	call := func(id, name, args string) wire.Part {
		return wire.Part{Kind: wire.PartToolCall, ToolCall: &wire.ToolCall{ID: id, Name: name, Arguments: args}}
	}
	result := func(id, name, out string, isErr bool) wire.Part {
		return wire.Part{Kind: wire.PartToolResult, ToolResult: &wire.ToolResult{CallID: id, Name: name, IsError: isErr, Content: []wire.Part{text(out)}}}
	}
	params := json.RawMessage(`{"type":"object","properties":{"city":{"type":"string","description":"d"},"n":{"type":["integer","null"],"minimum":1}},"required":["city"]}`)
	cases := []struct {
		name string
		req  wire.Request
	}{
		{"conversation", wire.Request{
			Model:  "m",
			System: []wire.Part{text("sys one"), text("sys two")},
			Messages: []wire.Message{
				{Role: wire.RoleUser, Parts: []wire.Part{text("hi <there>"), {Kind: wire.PartImage, Image: &wire.Image{MediaType: "image/png", Data: "AAAA"}}}},
				{Role: wire.RoleAssistant, Parts: []wire.Part{text("calling"), call("call_0", "weather", `{"city":"Paris"}`), call("call_1", "weather", `{"city":"Rome","n":2}`)}},
				{Role: wire.RoleTool, Parts: []wire.Part{result("call_0", "weather", "sunny", false), result("call_1", "weather", `{"temp":3}`, false)}},
				{Role: wire.RoleUser, Parts: []wire.Part{text("and now?"), {Kind: wire.PartImage, Image: &wire.Image{MediaType: "image/jpeg", URL: filesURIPrefix + "v1beta/files/x"}}}},
				{Role: wire.RoleAssistant, Parts: []wire.Part{call("call_2", "clock", "{}")}},
				{Role: wire.RoleTool, Parts: []wire.Part{result("call_2", "clock", "broken", true)}},
			},
			Tools:           []wire.Tool{{Name: "weather", Description: "w", Parameters: params}, {Name: "clock"}},
			ToolChoice:      wire.ToolChoice{Mode: wire.ToolChoiceNamed, Name: "weather"},
			Temperature:     f64(0.5),
			TopP:            f64(0.25),
			TopK:            i64(8),
			Stop:            []string{"a", "b"},
			MaxOutputTokens: 99,
			Candidates:      3,
			Stream:          true,
		}},
		{"json schema", wire.Request{
			Messages:       []wire.Message{{Role: wire.RoleUser, Parts: []wire.Part{text("x")}}},
			ResponseFormat: wire.ResponseFormat{Kind: wire.FormatJSONSchema, Name: "response", Schema: params},
			Tools:          []wire.Tool{{Name: "f"}},
			ToolChoice:     wire.ToolChoice{Mode: wire.ToolChoiceNone},
		}},
		{"json mode", wire.Request{
			Messages:       []wire.Message{{Role: wire.RoleUser, Parts: []wire.Part{text("x")}}},
			ResponseFormat: wire.ResponseFormat{Kind: wire.FormatJSON},
			Tools:          []wire.Tool{{Name: "f"}, {Name: "g"}},
			ToolChoice:     wire.ToolChoice{Mode: wire.ToolChoiceRequired},
		}},
		{"embed", wire.Request{Op: wire.OpEmbed, Input: []string{"a", "b", ""}, Dimensions: 16}},
		{"count", wire.Request{Op: wire.OpCountTokens, System: []wire.Part{text("s")}, Messages: []wire.Message{{Role: wire.RoleUser, Parts: []wire.Part{text("x")}}}}},
		{"count plain", wire.Request{Op: wire.OpCountTokens, Messages: []wire.Message{{Role: wire.RoleUser, Parts: []wire.Part{text("x")}}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hr, err := Adapter{}.WriteRequest(&c.req, testUpstream)
			if err != nil {
				t.Fatal(err)
			}
			got := wire.Request{Op: c.req.Op, Model: c.req.Model, Stream: c.req.Stream}
			if err := (Adapter{}).ReadRequest(hr.Body, &got); err != nil {
				t.Fatalf("reading %s: %v", hr.Body, err)
			}
			if a, b := canonicalText(t, got), canonicalText(t, c.req); a != b {
				t.Fatalf("round trip\n got %s\nwant %s", a, b)
			}
		})
	}
}

// canonicalText is a request as JSON with its schemas re-encoded, so
// key order and spacing do not count.
func canonicalText(t *testing.T, req wire.Request) string {
	t.Helper()
	norm := func(raw json.RawMessage) json.RawMessage {
		if raw == nil {
			return nil
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(v)
		return b
	}
	req.Tools = append([]wire.Tool(nil), req.Tools...)
	for i := range req.Tools {
		req.Tools[i].Parameters = norm(req.Tools[i].Parameters)
	}
	req.ResponseFormat.Schema = norm(req.ResponseFormat.Schema)
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

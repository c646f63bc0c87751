package gemini

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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

var testUpstream = wire.Upstream{
	Type:    internalapi.TypeGemini,
	BaseURL: "https://generativelanguage.googleapis.com/",
	Secret:  "test-key",
	Model:   "gemini-2.5-flash",
}

// dumpHTTP renders an upstream call (or the writer's error) for a golden
// file.
func dumpHTTP(t *testing.T, hr *wire.HTTPRequest, err error) []byte {
	t.Helper()
	if err != nil {
		return []byte("error: " + err.Error() + "\n")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s\n", hr.URL)
	for _, h := range hr.Headers {
		fmt.Fprintf(&b, "%s: %s\n", h.Key, h.Value)
	}
	b.WriteByte('\n')
	if err := json.Indent(&b, hr.Body, "", "  "); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, hr.Body)
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// goldenCanonical compares a canonical value with a golden file, leaving
// out null, "" and false fields so the file shows what is set.
func goldenCanonical(t *testing.T, name string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var tree any
	if err := json.Unmarshal(b, &tree); err != nil {
		t.Fatal(err)
	}
	golden.JSON(t, name, prune(tree))
}

func prune(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if e == nil || e == "" || e == false {
				delete(v, k)
				continue
			}
			v[k] = prune(e)
		}
	case []any:
		for i, e := range v {
			v[i] = prune(e)
		}
	}
	return v
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRequestGolden reads each client body into the canonical request and
// writes that for a Gemini upstream; both are golden.
func TestRequestGolden(t *testing.T) {
	cases := []struct {
		file   string
		op     wire.Op
		stream bool
	}{
		{"chat.json", wire.OpGenerate, false},
		{"tools.json", wire.OpGenerate, true},
		{"snake_case.json", wire.OpGenerate, false},
		{"refused.json", wire.OpGenerate, false},
		{"count_tokens.json", wire.OpCountTokens, false},
		{"count_tokens_plain.json", wire.OpCountTokens, false},
		{"embed.json", wire.OpEmbed, false},
		{"batch_embed.json", wire.OpEmbed, false},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			req := wire.Request{Op: c.op, Model: "my-alias", Stream: c.stream}
			if err := (Adapter{}).ReadRequest(readFile(t, "requests/"+c.file), &req); err != nil {
				t.Fatal(err)
			}
			goldenCanonical(t, "requests/"+c.file+".canonical.golden", req)
			hr, err := Adapter{}.WriteRequest(&req, testUpstream)
			golden.Bytes(t, "requests/"+c.file+".upstream.golden", dumpHTTP(t, hr, err))
		})
	}
}

func f64(v float64) *float64 { return &v }
func i64(v int64) *int64     { return &v }

// TestWriteCanonical writes canonical requests as other formats' readers
// make them.
func TestWriteCanonical(t *testing.T) {
	weather := wire.Tool{Name: "get_weather", Description: "Weather", Parameters: json.RawMessage(
		`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"place":{"$ref":"#/$defs/Place"},"days":{"type":["integer","null"],"minimum":1,"exclusiveMaximum":10}},"required":["place"],"additionalProperties":false,"$defs":{"Place":{"type":"object","properties":{"city":{"type":"string"},"country":{"type":"string","const":"FR"}},"required":["city"]}}}`)}
	noArgs := wire.Tool{Name: "ping", Parameters: json.RawMessage(`{"type":"object","properties":{}}`)}
	cases := []struct {
		name string
		req  wire.Request
	}{
		{"openai_tools", wire.Request{
			System: []wire.Part{{Kind: wire.PartText, Text: "sys"}},
			Messages: []wire.Message{
				{Role: wire.RoleUser, Parts: []wire.Part{{Kind: wire.PartText, Text: "weather?"}}},
				{Role: wire.RoleAssistant, Parts: []wire.Part{
					{Kind: wire.PartReasoning, Text: "hidden"},
					{Kind: wire.PartToolCall, ToolCall: &wire.ToolCall{ID: "call_a", Name: "get_weather", Arguments: `{"place":{"city":"Paris"}}`}},
					{Kind: wire.PartToolCall, ToolCall: &wire.ToolCall{ID: "call_b", Name: "ping", Arguments: ""}},
				}},
				// Tool results without names, as the OpenAI reader may leave them.
				{Role: wire.RoleTool, Parts: []wire.Part{{Kind: wire.PartToolResult, ToolResult: &wire.ToolResult{CallID: "call_a", Content: []wire.Part{{Kind: wire.PartText, Text: "sunny"}}}}}},
				{Role: wire.RoleTool, Parts: []wire.Part{{Kind: wire.PartToolResult, ToolResult: &wire.ToolResult{CallID: "call_b", Content: []wire.Part{{Kind: wire.PartText, Text: `{"pong":true}`}}}}}},
				{Role: wire.RoleUser, Parts: []wire.Part{{Kind: wire.PartText, Text: "thanks"}}},
			},
			Tools:             []wire.Tool{weather, noArgs},
			ToolChoice:        wire.ToolChoice{Mode: wire.ToolChoiceRequired},
			ParallelToolCalls: new(bool),
			ResponseFormat:    wire.ResponseFormat{Kind: wire.FormatJSON},
			Temperature:       f64(1),
			MaxOutputTokens:   1000,
			Stream:            true,
			IncludeUsage:      true,
		}},
		{"anthropic_tool_error", wire.Request{
			Messages: []wire.Message{
				{Role: wire.RoleUser, Parts: []wire.Part{{Kind: wire.PartText, Text: "go"}}},
				{Role: wire.RoleAssistant, Parts: []wire.Part{{Kind: wire.PartToolCall, ToolCall: &wire.ToolCall{ID: "toolu_1", Name: "ping", Arguments: "{}"}}}},
				{Role: wire.RoleTool, Parts: []wire.Part{{Kind: wire.PartToolResult, ToolResult: &wire.ToolResult{CallID: "toolu_1", Name: "ping", IsError: true, Content: []wire.Part{{Kind: wire.PartText, Text: "timeout"}}}}}},
			},
			Tools:      []wire.Tool{noArgs},
			ToolChoice: wire.ToolChoice{Mode: wire.ToolChoiceNamed, Name: "ping"},
			TopK:       i64(5),
			Stop:       []string{"###"},
		}},
		{"json_schema", wire.Request{
			Messages:       []wire.Message{{Role: wire.RoleUser, Parts: []wire.Part{{Kind: wire.PartText, Text: "x"}}}},
			ResponseFormat: wire.ResponseFormat{Kind: wire.FormatJSONSchema, Name: "out", Strict: true, Schema: weather.Parameters},
			Tools:          []wire.Tool{noArgs},
			ToolChoice:     wire.ToolChoice{Mode: wire.ToolChoiceNone},
		}},
		{"image_url", wire.Request{Messages: []wire.Message{{Role: wire.RoleUser, Parts: []wire.Part{
			{Kind: wire.PartImage, Image: &wire.Image{URL: "https://example.com/cat.png", Detail: "high"}}}}}}},
		{"refused", wire.Request{Refused: []string{"logprobs", "frequency_penalty"}}},
		{"embed_openai", wire.Request{Op: wire.OpEmbed, Input: []string{"a", "b"}, Dimensions: 64}},
		{"schema_allof", wire.Request{ResponseFormat: wire.ResponseFormat{Kind: wire.FormatJSONSchema, Schema: json.RawMessage(`{"allOf":[{"type":"string"}]}`)}}},
		{"schema_recursive", wire.Request{ResponseFormat: wire.ResponseFormat{Kind: wire.FormatJSONSchema, Schema: json.RawMessage(`{"$defs":{"N":{"type":"object","properties":{"next":{"$ref":"#/$defs/N"}}}},"$ref":"#/$defs/N"}`)}}},
		{"orphan_result", wire.Request{Messages: []wire.Message{{Role: wire.RoleTool, Parts: []wire.Part{{Kind: wire.PartToolResult, ToolResult: &wire.ToolResult{CallID: "nope"}}}}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hr, err := Adapter{}.WriteRequest(&c.req, testUpstream)
			golden.Bytes(t, "canonical/"+c.name+".upstream.golden", dumpHTTP(t, hr, err))
		})
	}
}

func TestWriteUnsupportedField(t *testing.T) {
	cases := []struct {
		name  string
		req   wire.Request
		field string
	}{
		{"refused first", wire.Request{Refused: []string{"logprobs", "seed"}}, "logprobs"},
		{"image url", wire.Request{Messages: []wire.Message{{Role: wire.RoleUser, Parts: []wire.Part{{Kind: wire.PartImage, Image: &wire.Image{URL: "http://x/y.png"}}}}}}, "image_url"},
		{"gs url", wire.Request{Messages: []wire.Message{{Role: wire.RoleUser, Parts: []wire.Part{{Kind: wire.PartImage, Image: &wire.Image{URL: "gs://b/o.png"}}}}}}, "image_url"},
		{"allOf", wire.Request{ResponseFormat: wire.ResponseFormat{Kind: wire.FormatJSONSchema, Schema: json.RawMessage(`{"type":"object","properties":{"a":{"allOf":[]}}}`)}}, "allOf"},
		{"remote ref", wire.Request{Tools: []wire.Tool{{Name: "f", Parameters: json.RawMessage(`{"$ref":"https://x/s.json"}`)}}}, "$ref"},
		{"two types", wire.Request{Tools: []wire.Tool{{Name: "f", Parameters: json.RawMessage(`{"type":["string","integer"]}`)}}}, "type"},
		{"tuple items", wire.Request{Tools: []wire.Tool{{Name: "f", Parameters: json.RawMessage(`{"type":"array","items":[{"type":"string"}]}`)}}}, "items"},
		{"exponential refs", wire.Request{Tools: []wire.Tool{{Name: "f", Parameters: json.RawMessage(exponentialSchema(40))}}}, "$ref"},
		{"tool result image", wire.Request{Messages: []wire.Message{
			{Role: wire.RoleAssistant, Parts: []wire.Part{{Kind: wire.PartToolCall, ToolCall: &wire.ToolCall{ID: "1", Name: "f"}}}},
			{Role: wire.RoleTool, Parts: []wire.Part{{Kind: wire.PartToolResult, ToolResult: &wire.ToolResult{CallID: "1", Content: []wire.Part{{Kind: wire.PartImage, Image: &wire.Image{Data: "x", MediaType: "image/png"}}}}}}},
		}}, "tool result image"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Adapter{}.WriteRequest(&c.req, testUpstream)
			var u *wire.Unsupported
			if !errors.As(err, &u) {
				t.Fatalf("err = %v, want *wire.Unsupported", err)
			}
			if u.Field != c.field || u.Target != "Gemini" {
				t.Fatalf("unsupported %q for %q, want %q", u.Field, u.Target, c.field)
			}
		})
	}
}

// exponentialSchema makes n $defs each referring twice to the next: 2^n
// nodes when inlined naively.
func exponentialSchema(n int) string {
	var b strings.Builder
	b.WriteString(`{"$ref":"#/$defs/d0","$defs":{`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"d%d":{"type":"object","properties":{"a":{"$ref":"#/$defs/d%d"},"b":{"$ref":"#/$defs/d%d"}}}`, i, i+1, i+1)
	}
	fmt.Fprintf(&b, `,"d%d":{"type":"string"}}}`, n)
	return b.String()
}

func TestWriteURL(t *testing.T) {
	cases := []struct {
		name string
		req  wire.Request
		up   wire.Upstream
		want string
	}{
		{"generate", wire.Request{}, testUpstream, "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"},
		{"stream is sse", wire.Request{Stream: true}, testUpstream, "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"},
		{"count", wire.Request{Op: wire.OpCountTokens}, testUpstream, "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:countTokens"},
		{"embed", wire.Request{Op: wire.OpEmbed, Input: []string{"x"}}, testUpstream, "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:batchEmbedContents"},
		{"version and escaping", wire.Request{}, wire.Upstream{BaseURL: "http://127.0.0.1:9/g", APIVersion: "v1", Model: "models/a/b:c d?"},
			"http://127.0.0.1:9/g/v1/models/a%2Fb%3Ac%20d%3F:generateContent"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hr, err := Adapter{}.WriteRequest(&c.req, c.up)
			if err != nil {
				t.Fatal(err)
			}
			if hr.URL != c.want {
				t.Fatalf("URL = %s, want %s", hr.URL, c.want)
			}
			if len(hr.Headers) != 1 || hr.Headers[0].Key != "x-goog-api-key" || hr.Headers[0].Value != c.up.Secret {
				t.Fatalf("headers = %v", hr.Headers)
			}
		})
	}
}

func TestReadRequestErrors(t *testing.T) {
	cases := []struct {
		name   string
		op     wire.Op
		body   string
		reason apperr.Reason
	}{
		{"not an object", wire.OpGenerate, `[1]`, apperr.ReasonInvalidArgument},
		{"both spellings", wire.OpGenerate, `{"generationConfig":{},"generation_config":{}}`, apperr.ReasonDuplicateKey},
		{"both inner spellings", wire.OpGenerate, `{"generationConfig":{"maxOutputTokens":1,"max_output_tokens":2}}`, apperr.ReasonDuplicateKey},
		{"bad role", wire.OpGenerate, `{"contents":[{"role":"system","parts":[{"text":"x"}]}]}`, apperr.ReasonInvalidArgument},
		{"orphan response", wire.OpGenerate, `{"contents":[{"role":"user","parts":[{"functionResponse":{"name":"f","response":{}}}]}]}`, apperr.ReasonInvalidArgument},
		{"call in user turn", wire.OpGenerate, `{"contents":[{"role":"user","parts":[{"functionCall":{"name":"f"}}]}]}`, apperr.ReasonInvalidArgument},
		{"args not object", wire.OpGenerate, `{"contents":[{"role":"model","parts":[{"functionCall":{"name":"f","args":[1]}}]}]}`, apperr.ReasonInvalidArgument},
		{"wrong type", wire.OpGenerate, `{"generationConfig":{"temperature":"hot"}}`, apperr.ReasonInvalidArgument},
		{"bad mode", wire.OpGenerate, `{"toolConfig":{"functionCallingConfig":{"mode":"SOMETIMES"}}}`, apperr.ReasonInvalidArgument},
		{"embed without content", wire.OpEmbed, `{"taskType":"X"}`, apperr.ReasonInvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := wire.Request{Op: c.op}
			err := Adapter{}.ReadRequest([]byte(c.body), &req)
			if apperr.ReasonOf(err) != c.reason {
				t.Fatalf("err = %v, want reason %s", err, c.reason)
			}
		})
	}
}

func TestReadRefusesAndDrops(t *testing.T) {
	cases := []struct {
		name string
		body string
		want []string
	}{
		{"hints dropped", `{"safetySettings":[],"labels":{},"model":"models/x","generationConfig":{"seed":1,"thinkingConfig":{},"responseLogprobs":false}}`, nil},
		{"penalties", `{"generationConfig":{"presencePenalty":1,"frequencyPenalty":1}}`, []string{"generationConfig.frequencyPenalty", "generationConfig.presencePenalty"}},
		{"logprobs", `{"generationConfig":{"responseLogprobs":true,"logprobs":3}}`, []string{"responseLogprobs", "generationConfig.logprobs"}},
		{"audio out", `{"generationConfig":{"responseModalities":["TEXT","AUDIO"]}}`, []string{"responseModalities"}},
		{"enum mime", `{"generationConfig":{"responseMimeType":"text/x.enum"}}`, []string{"responseMimeType"}},
		{"pdf inline", `{"contents":[{"parts":[{"inlineData":{"mimeType":"application/pdf","data":"JVBERi0="}}]}]}`, []string{"inlineData"}},
		{"gs file", `{"contents":[{"parts":[{"fileData":{"mimeType":"image/png","fileUri":"gs://b/o.png"}}]}]}`, []string{"fileData"}},
		{"code execution", `{"tools":[{"codeExecution":{}}],"contents":[{"role":"model","parts":[{"executableCode":{"code":"1"}}]}]}`, []string{"parts.executableCode", "tools.codeExecution"}},
		{"unknown top-level", `{"cachedContent":"c","zzz":1}`, []string{"cachedContent", "zzz"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var req wire.Request
			if err := (Adapter{}).ReadRequest([]byte(c.body), &req); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(req.Refused, c.want) {
				t.Fatalf("Refused = %q, want %q", req.Refused, c.want)
			}
		})
	}
}

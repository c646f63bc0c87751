package anthropic

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/golden"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// TestResponseGolden decodes each upstream answer under
// testdata/responses (golden canonical answer), encodes it for a client
// (golden client answer) and checks the client answer decodes to the
// same canonical answer.
func TestResponseGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/responses/*.json")
	if len(files) < 3 {
		t.Fatalf("only %d answers", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			raw, _ := os.ReadFile(f)
			resp, err := Adapter{}.DecodeResponse(raw)
			if err != nil {
				t.Fatal(err)
			}
			golden.JSON(t, "golden/responses/"+name+".canonical.json", resp)
			req := &wire.Request{Op: opFor(name), Model: "client-model"}
			out, err := Adapter{}.EncodeResponse(resp, req)
			if err != nil {
				t.Fatal(err)
			}
			golden.Bytes(t, "golden/responses/"+name+".client.json", indentJSON(t, out))
			back, err := Adapter{}.DecodeResponse(out)
			if err != nil {
				t.Fatal(err)
			}
			if req.Op == wire.OpGenerate {
				back.Model = resp.Model
			}
			if !reflect.DeepEqual(back, resp) {
				t.Errorf("client answer decodes to %s\nwant %s", mustJSON(back), mustJSON(resp))
			}
			// the usage reader agrees with the decoder
			if u, ok := (Adapter{}).ReadUsage(raw); !ok || (req.Op == wire.OpGenerate && u != resp.Usage) || (req.Op == wire.OpCountTokens && u.Prompt != resp.InputTokens) {
				t.Errorf("ReadUsage = %+v %v", u, ok)
			}
		})
	}
}

// TestEncodeResponse: answers from other formats.
func TestEncodeResponse(t *testing.T) {
	resp := &wire.Response{ID: "chatcmpl-1", Model: "gpt-4o", Finish: wire.FinishLength,
		Parts: []wire.Part{{Kind: wire.PartText, Text: "a <b>"}, {Kind: wire.PartToolCall, ToolCall: &wire.ToolCall{ID: "call_1", Name: "f", Arguments: ""}}},
		Usage: wire.Usage{Prompt: 100, Completion: 10, Cached: 64, Reasoning: 4}, HasUsage: true}
	out, err := Adapter{}.EncodeResponse(resp, &wire.Request{Model: "alias"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"chatcmpl-1","type":"message","role":"assistant","model":"alias","content":[{"type":"text","text":"a <b>"},{"type":"tool_use","id":"call_1","name":"f","input":{}}],"stop_reason":"max_tokens","stop_sequence":null,"usage":{"input_tokens":36,"cache_creation_input_tokens":0,"cache_read_input_tokens":64,"output_tokens":10,"output_tokens_details":{"thinking_tokens":4}}}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	resp.Parts[1].ToolCall.Arguments = `{"broken":`
	if _, err := (Adapter{}).EncodeResponse(resp, &wire.Request{}); err == nil {
		t.Error("encoded tool arguments that are not JSON")
	}
}

func TestReadUsage(t *testing.T) {
	tests := []struct {
		data string
		want wire.Usage
		ok   bool
	}{
		{`{"type":"message_start","message":{"usage":{"input_tokens":5,"cache_read_input_tokens":3,"output_tokens":1}}}`, wire.Usage{Prompt: 8, Cached: 3, Completion: 1}, true},
		{`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":7}}`, wire.Usage{Completion: 7}, true},
		{`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}`, wire.Usage{}, false},
		{`{"type":"ping"}`, wire.Usage{}, false},
		{`not json`, wire.Usage{}, false},
	}
	for _, tt := range tests {
		u, ok := Adapter{}.ReadUsage([]byte(tt.data))
		if u != tt.want || ok != tt.ok {
			t.Errorf("%s: %+v %v, want %+v %v", tt.data, u, ok, tt.want, tt.ok)
		}
	}
}

// TestRenderError: the gateway's own Anthropic error bodies
// (gateway-service/internal/biz/testdata/errors/anthropic.golden, copied to
// testdata/errors.golden), byte for byte.
func TestRenderError(t *testing.T) {
	f, err := os.Open("testdata/errors.golden")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if q, ok := strings.CutPrefix(line, "stream: "); ok {
			want, err := strconv.Unquote(q)
			if err != nil {
				t.Fatal(err)
			}
			enc := Adapter{}.NewStreamEncoder(&wire.Request{})
			if got := string(enc.Encode(nil, wire.Event{Kind: wire.EventError, Text: "upstream stream ended unexpectedly"})); got != want {
				t.Errorf("stream error\n got %q\nwant %q", got, want)
			}
			continue
		}
		code, want, _ := strings.Cut(line, " ")
		status, _ := strconv.Atoi(code)
		var e errorJSON
		_ = json.Unmarshal([]byte(want), &e)
		if got := string(Adapter{}.RenderError(status, e.Error.Reason, e.Error.Message)); got != want {
			t.Errorf("%d\n got %s\nwant %s", status, got, want)
		}
		if msg := (Adapter{}).DecodeError([]byte(want)); msg != e.Error.Message || msg == "" {
			t.Errorf("DecodeError = %q", msg)
		}
		n++
	}
	if n < 10 {
		t.Fatalf("only %d error lines", n)
	}
	if msg := (Adapter{}).DecodeError([]byte(`<html>bad gateway</html>`)); msg != "" {
		t.Errorf("DecodeError of HTML = %q", msg)
	}
}

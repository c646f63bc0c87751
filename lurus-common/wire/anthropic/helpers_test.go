package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// kindNames name the event kinds in golden files.
var kindNames = map[wire.EventKind]string{
	wire.EventStart: "start", wire.EventText: "text", wire.EventReasoning: "reasoning",
	wire.EventToolCall: "tool_call", wire.EventToolArgs: "tool_args", wire.EventFinish: "finish",
	wire.EventUsage: "usage", wire.EventError: "error",
}

// eventJSON is an event as golden files show it.
type eventJSON struct {
	Kind       string            `json:"kind"`
	ID         string            `json:"id,omitempty"`
	Model      string            `json:"model,omitempty"`
	Index      int               `json:"index,omitempty"`
	Text       string            `json:"text,omitempty"`
	ToolCallID string            `json:"tool_call_id,omitempty"`
	ToolName   string            `json:"tool_name,omitempty"`
	Finish     wire.FinishReason `json:"finish,omitempty"`
	Usage      *wire.Usage       `json:"usage,omitempty"`
}

func toJSONEvents(evs []wire.Event) []eventJSON {
	out := make([]eventJSON, 0, len(evs))
	for _, ev := range evs {
		j := eventJSON{Kind: kindNames[ev.Kind], ID: ev.ID, Model: ev.Model, Index: ev.Index, Text: ev.Text,
			ToolCallID: ev.ToolCallID, ToolName: ev.ToolName, Finish: ev.Finish}
		if ev.Kind == wire.EventUsage {
			u := ev.Usage
			j.Usage = &u
		}
		out = append(out, j)
	}
	return out
}

func fromJSONEvents(t testing.TB, raw []byte) []wire.Event {
	t.Helper()
	var in []eventJSON
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatal(err)
	}
	byName := map[string]wire.EventKind{}
	for k, n := range kindNames {
		byName[n] = k
	}
	out := make([]wire.Event, 0, len(in))
	for _, j := range in {
		k, ok := byName[j.Kind]
		if !ok {
			t.Fatalf("unknown event kind %q", j.Kind)
		}
		ev := wire.Event{Kind: k, ID: j.ID, Model: j.Model, Index: j.Index, Text: j.Text,
			ToolCallID: j.ToolCallID, ToolName: j.ToolName, Finish: j.Finish}
		if j.Usage != nil {
			ev.Usage = *j.Usage
		}
		out = append(out, ev)
	}
	return out
}

// sseEvent is one parsed SSE event.
type sseEvent struct{ name, data string }

// parseSSE splits an SSE transcript into events (name and data lines).
func parseSSE(t testing.TB, b []byte) []sseEvent {
	t.Helper()
	var out []sseEvent
	for _, chunk := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n\n") {
		if strings.TrimSpace(chunk) == "" {
			continue
		}
		var ev sseEvent
		for _, line := range strings.Split(chunk, "\n") {
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data += strings.TrimPrefix(line, "data: ")
			default:
				t.Fatalf("unexpected SSE line %q", line)
			}
		}
		out = append(out, ev)
	}
	return out
}

// decodeAll runs a transcript's data through a fresh stream decoder.
func decodeAll(t testing.TB, evs []sseEvent) []wire.Event {
	t.Helper()
	d := Adapter{}.NewStreamDecoder()
	var out []wire.Event
	for _, ev := range evs {
		if err := d.Decode([]byte(ev.data), func(e wire.Event) { out = append(out, e) }); err != nil {
			t.Fatalf("decode %s: %v", ev.data, err)
		}
	}
	return out
}

// encodeAll encodes events for a client of model; end says whether the
// stream ended normally.
func encodeAll(evs []wire.Event, model string, end bool) []byte {
	enc := Adapter{}.NewStreamEncoder(&wire.Request{Model: model})
	var out []byte
	for _, ev := range evs {
		out = enc.Encode(out, ev)
	}
	if end {
		out = enc.End(out)
	}
	return out
}

// checkSDKStream checks a client stream against the rules the official
// SDKs enforce when they accumulate a message: message_start first;
// content blocks started in index order without gaps; a delta only for a
// started block, of the block's own type; tool_use blocks started with
// input {}; a block stopped once; message_delta then message_stop last
// (or an error event ending the stream); every data line's "type" equal to
// the event name.
func checkSDKStream(t testing.TB, b []byte) {
	t.Helper()
	evs := parseSSE(t, b)
	if len(evs) == 0 || evs[0].name != "message_start" {
		t.Fatalf("stream does not begin with message_start:\n%s", b)
	}
	kinds := map[int]string{}
	stopped := map[int]bool{}
	ended := false
	for i, ev := range evs {
		var v struct {
			Type         string `json:"type"`
			Index        *int   `json:"index"`
			ContentBlock *struct {
				Type  string          `json:"type"`
				Input json.RawMessage `json:"input"`
			} `json:"content_block"`
			Delta *struct {
				Type string `json:"type"`
			} `json:"delta"`
		}
		if err := json.Unmarshal([]byte(ev.data), &v); err != nil {
			t.Fatalf("event %d is not JSON: %s", i, ev.data)
		}
		if v.Type != ev.name {
			t.Fatalf("event %d named %q has type %q", i, ev.name, v.Type)
		}
		if ended {
			t.Fatalf("event %d after the end: %s", i, ev.data)
		}
		switch ev.name {
		case "content_block_start":
			if v.Index == nil || *v.Index != len(kinds) || v.ContentBlock == nil {
				t.Fatalf("event %d starts block out of order: %s", i, ev.data)
			}
			if v.ContentBlock.Type == "tool_use" && string(v.ContentBlock.Input) != "{}" {
				t.Fatalf("tool_use block not started with input {}: %s", ev.data)
			}
			kinds[*v.Index] = v.ContentBlock.Type
		case "content_block_delta":
			want := map[string]string{"text": "text_delta", "thinking": "thinking_delta", "tool_use": "input_json_delta"}
			if v.Index == nil || v.Delta == nil || want[kinds[*v.Index]] != v.Delta.Type || stopped[*v.Index] {
				t.Fatalf("event %d: delta for a block not open or of another type: %s", i, ev.data)
			}
		case "content_block_stop":
			if v.Index == nil || kinds[*v.Index] == "" || stopped[*v.Index] {
				t.Fatalf("event %d stops a block not open: %s", i, ev.data)
			}
			stopped[*v.Index] = true
		case "message_delta":
			if i+2 != len(evs) || evs[i+1].name != "message_stop" {
				t.Fatalf("message_delta is not followed by a final message_stop")
			}
			for idx := range kinds {
				if !stopped[idx] {
					t.Fatalf("block %d never stopped", idx)
				}
			}
		case "message_stop", "error":
			ended = true
		case "message_start", "ping":
			if i != 0 && ev.name == "message_start" {
				t.Fatalf("second message_start")
			}
		default:
			t.Fatalf("unknown event %q", ev.name)
		}
	}
	if !ended {
		t.Fatalf("stream ends without message_stop or error:\n%s", b)
	}
}

// indentJSON re-indents JSON text for golden files.
func indentJSON(t testing.TB, raw []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		t.Fatalf("not JSON: %v: %s", err, raw)
	}
	return append(buf.Bytes(), '\n')
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return string(b)
}

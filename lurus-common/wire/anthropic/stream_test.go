package anthropic

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/golden"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// TestStreamGolden runs each upstream transcript under testdata/streams
// (*.sse) through the decoder (golden canonical events) and the events
// through the encoder (golden client stream), and each canonical event
// list (*.events.json, as other formats' decoders produce them) through
// the encoder. Every client stream must pass the SDK rules and decode back
// to the same text, tool calls, finish and usage.
func TestStreamGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/streams/*")
	if len(files) < 4 {
		t.Fatalf("only %d stream files", len(files))
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Base(f)
		t.Run(base, func(t *testing.T) {
			var evs []wire.Event
			name := strings.TrimSuffix(base, ".sse")
			if strings.HasSuffix(base, ".events.json") {
				name = strings.TrimSuffix(base, ".events.json")
				evs = fromJSONEvents(t, raw)
			} else {
				evs = decodeAll(t, parseSSE(t, raw))
				golden.JSON(t, "golden/streams/"+name+".events.json", toJSONEvents(evs))
			}
			ended := evs[len(evs)-1].Kind != wire.EventError
			client := encodeAll(evs, "client-model", ended)
			golden.Bytes(t, "golden/streams/"+name+".client.sse", client)
			checkSDKStream(t, client)
			if got, want := summarize(decodeAll(t, parseSSE(t, client))), summarize(evs); !reflect.DeepEqual(got, want) {
				t.Errorf("client stream decodes to\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

// summary is what a stream means: the joined text and reasoning, each
// tool call's id, name and whole arguments, the finish and the last usage.
type summary struct {
	Text, Reasoning string
	Calls           []wire.ToolCall
	Finish          wire.FinishReason
	Usage           wire.Usage
	Error           string
}

func summarize(evs []wire.Event) summary {
	var s summary
	for _, ev := range evs {
		switch ev.Kind {
		case wire.EventText:
			s.Text += ev.Text
		case wire.EventReasoning:
			s.Reasoning += ev.Text
		case wire.EventToolCall:
			for len(s.Calls) <= ev.Index {
				s.Calls = append(s.Calls, wire.ToolCall{})
			}
			s.Calls[ev.Index].ID, s.Calls[ev.Index].Name = ev.ToolCallID, ev.ToolName
		case wire.EventToolArgs:
			s.Calls[ev.Index].Arguments += ev.Text
		case wire.EventFinish:
			s.Finish = ev.Finish
		case wire.EventUsage:
			s.Usage = ev.Usage
		case wire.EventError:
			s.Error = ev.Text
		}
	}
	return s
}

// TestStreamUsageMapping pins the field-by-field usage mapping: the
// canonical prompt includes cache reads and writes exactly once, the
// message_delta counts overwrite (never add to) message_start's.
func TestStreamUsageMapping(t *testing.T) {
	raw, _ := os.ReadFile("testdata/streams/tool.sse")
	s := summarize(decodeAll(t, parseSSE(t, raw)))
	want := wire.Usage{Prompt: 25 + 300 + 40, Completion: 89, Cached: 300, CacheWrite: 40}
	if s.Usage != want {
		t.Errorf("usage = %+v, want %+v", s.Usage, want)
	}
	// a stream cut after message_start keeps its input counts
	d := Adapter{}.NewStreamDecoder()
	var evs []wire.Event
	_ = d.Decode([]byte(parseSSE(t, raw)[0].data), func(e wire.Event) { evs = append(evs, e) })
	if u := summarize(evs).Usage; u.Prompt != 365 || u.Completion != 1 {
		t.Errorf("usage after message_start = %+v", u)
	}
	// the encoder subtracts the cache counts again
	out := string(encodeAll([]wire.Event{{Kind: wire.EventStart, ID: "x"}, {Kind: wire.EventUsage, Usage: want}}, "m", true))
	if !strings.Contains(out, `"usage":{"input_tokens":25,"cache_creation_input_tokens":40,"cache_read_input_tokens":300,"output_tokens":89}`) {
		t.Errorf("encoded usage wrong:\n%s", out)
	}
}

// TestStreamEncoderEdges: events the canonical stream may bring in an
// order Anthropic never uses.
func TestStreamEncoderEdges(t *testing.T) {
	tests := []struct {
		name string
		evs  []wire.Event
		want summary
	}{
		{name: "no start event, no finish", evs: []wire.Event{{Kind: wire.EventText, Text: "hi"}},
			want: summary{Text: "hi", Finish: wire.FinishStop}},
		{name: "text between tool calls, empty deltas, args of an unknown call",
			evs: []wire.Event{
				{Kind: wire.EventStart}, {Kind: wire.EventText, Text: ""},
				{Kind: wire.EventToolCall, Index: 0, ToolCallID: "a", ToolName: "f"},
				{Kind: wire.EventToolArgs, Index: 0, Text: `{}`},
				{Kind: wire.EventText, Text: "mid"},
				{Kind: wire.EventToolArgs, Index: 5, Text: "lost"},
				{Kind: wire.EventToolCall, Index: 1, ToolCallID: "b", ToolName: "g"},
				{Kind: wire.EventToolCall, Index: 1, ToolCallID: "b", ToolName: "g"},
				{Kind: wire.EventFinish, Finish: wire.FinishLength},
			},
			want: summary{Text: "mid", Calls: []wire.ToolCall{{ID: "a", Name: "f", Arguments: "{}"}, {ID: "b", Name: "g"}}, Finish: wire.FinishLength}},
		{name: "content filter", evs: []wire.Event{{Kind: wire.EventStart}, {Kind: wire.EventFinish, Finish: wire.FinishContentFilter}},
			want: summary{Finish: wire.FinishContentFilter}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := encodeAll(tt.evs, "m", true)
			checkSDKStream(t, out)
			got := summarize(decodeAll(t, parseSSE(t, out)))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v\n%s", got, tt.want, out)
			}
		})
	}
}

func TestStreamDecoderRejects(t *testing.T) {
	for _, data := range []string{`{`, `{"type":"message_start"}`, `{"type":"content_block_start","index":0}`, `{"type":"content_block_delta","index":0}`} {
		if err := (Adapter{}).NewStreamDecoder().Decode([]byte(data), func(wire.Event) {}); err == nil {
			t.Errorf("%s: accepted", data)
		}
	}
	// unknown events and deltas of unknown blocks are ignored
	var n int
	d := Adapter{}.NewStreamDecoder()
	for _, data := range []string{`{"type":"future_event"}`, `{"type":"content_block_delta","index":3,"delta":{"type":"text_delta","text":"x"}}`} {
		if err := d.Decode([]byte(data), func(wire.Event) { n++ }); err != nil {
			t.Fatal(err)
		}
	}
	if n != 0 {
		t.Errorf("%d events from nothing", n)
	}
}

// TestStreamEndsAtError: once an error event ended a client stream, later
// events and End append nothing; a message_delta with end_turn after the
// error would tell the client its cut answer was complete.
func TestStreamEndsAtError(t *testing.T) {
	enc := Adapter{}.NewStreamEncoder(&wire.Request{Model: "m"})
	out := enc.Encode(nil, wire.Event{Kind: wire.EventStart, ID: "msg_1"})
	out = enc.Encode(out, wire.Event{Kind: wire.EventText, Text: "Part"})
	out = enc.Encode(out, wire.Event{Kind: wire.EventError, Text: "Overloaded"})
	cut := len(out)
	out = enc.Encode(out, wire.Event{Kind: wire.EventText, Text: "more"})
	out = enc.Encode(out, wire.Event{Kind: wire.EventUsage, Usage: wire.Usage{Prompt: 1}})
	out = enc.End(out)
	if len(out) != cut {
		t.Errorf("events after the error: %s", out[cut:])
	}
	evs := parseSSE(t, out)
	if last := evs[len(evs)-1]; last.name != "error" {
		t.Errorf("stream ends with %s, want error", last.name)
	}
}

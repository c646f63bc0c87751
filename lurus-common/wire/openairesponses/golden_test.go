package openairesponses

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/golden"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// fixed is the adapter of every golden test: created_at is reproducible.
var fixed = Adapter{Now: func() time.Time { return time.Unix(1700000000, 0) }}

var openAIUpstream = wire.Upstream{Type: internalapi.TypeOpenAI, BaseURL: "https://api.openai.com/v1",
	Secret: "sk-test", Model: "gpt-4.1-2025-04-14"}

// inputs lists testdata/dir/*ext without the extension.
func inputs(t *testing.T, dir, ext string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*"+ext))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata/%s/*%s: %v", dir, ext, err)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = strings.TrimSuffix(filepath.Base(p), ext)
	}
	return names
}

func readFile(t *testing.T, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{"testdata"}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGoldenRequests reads each client request into the canonical form
// and writes that for an OpenAI upstream (or records the refusal).
func TestGoldenRequests(t *testing.T) {
	for _, name := range inputs(t, "requests", ".json") {
		t.Run(name, func(t *testing.T) {
			var req wire.Request
			if err := fixed.ReadRequest(readFile(t, "requests", name+".json"), &req); err != nil {
				t.Fatal(err)
			}
			golden.JSON(t, filepath.Join("requests", name+".canonical.golden"), &req)
			up, err := fixed.WriteRequest(&req, openAIUpstream)
			if err != nil {
				golden.Bytes(t, filepath.Join("requests", name+".upstream.golden"), []byte("error: "+err.Error()+"\n"))
				return
			}
			golden.JSONBytes(t, filepath.Join("requests", name+".upstream.golden"), up.Body)
		})
	}
}

// sseData splits an SSE transcript into the data of its events.
func sseData(t testing.TB, transcript []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for _, ev := range bytes.Split(bytes.ReplaceAll(transcript, []byte("\r\n"), []byte("\n")), []byte("\n\n")) {
		var data []byte
		for _, line := range bytes.Split(ev, []byte("\n")) {
			if d, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
				data = append(data, d...)
			}
		}
		if len(data) > 0 {
			out = append(out, data)
		}
	}
	return out
}

// eventDump is a canonical event as golden files show it.
type eventDump struct {
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

var kindNames = map[wire.EventKind]string{wire.EventStart: "start", wire.EventText: "text",
	wire.EventReasoning: "reasoning", wire.EventToolCall: "tool_call", wire.EventToolArgs: "tool_args",
	wire.EventFinish: "finish", wire.EventUsage: "usage", wire.EventError: "error"}

func dumpEvents(evs []wire.Event) []eventDump {
	out := make([]eventDump, len(evs))
	for i, ev := range evs {
		out[i] = eventDump{Kind: kindNames[ev.Kind], ID: ev.ID, Model: ev.Model, Index: ev.Index, Text: ev.Text,
			ToolCallID: ev.ToolCallID, ToolName: ev.ToolName, Finish: ev.Finish}
		if ev.Kind == wire.EventUsage {
			u := ev.Usage
			out[i].Usage = &u
		}
	}
	return out
}

// decodeStream runs an upstream transcript through a stream decoder.
func decodeStream(t testing.TB, transcript []byte) []wire.Event {
	t.Helper()
	dec := fixed.NewStreamDecoder()
	var evs []wire.Event
	for _, data := range sseData(t, transcript) {
		if err := dec.Decode(data, func(ev wire.Event) { evs = append(evs, ev) }); err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
	}
	return evs
}

// encodeStream encodes canonical events as a client stream for req; End
// is appended unless the stream ended in an error.
func encodeStream(req *wire.Request, evs []wire.Event) []byte {
	enc := fixed.NewStreamEncoder(req)
	var out []byte
	for _, ev := range evs {
		out = enc.Encode(out, ev)
	}
	return enc.End(out)
}

// clientRequest is the client's request the stream goldens encode for.
func clientRequest() *wire.Request {
	return &wire.Request{Model: "my-alias", Stream: true, MaxOutputTokens: 512,
		Tools: []wire.Tool{{Name: "get_weather", Parameters: []byte(`{"type":"object"}`)}}}
}

// TestGoldenStreams decodes each upstream transcript into canonical
// events and encodes those as the client's stream.
func TestGoldenStreams(t *testing.T) {
	for _, name := range inputs(t, "streams", ".sse") {
		t.Run(name, func(t *testing.T) {
			evs := decodeStream(t, readFile(t, "streams", name+".sse"))
			golden.JSON(t, filepath.Join("streams", name+".events.golden"), dumpEvents(evs))
			golden.Bytes(t, filepath.Join("streams", name+".client.golden"), encodeStream(clientRequest(), evs))
		})
	}
}

// TestGoldenResponses decodes each complete upstream answer and encodes it
// for the client.
func TestGoldenResponses(t *testing.T) {
	for _, name := range inputs(t, "responses", ".json") {
		t.Run(name, func(t *testing.T) {
			resp, err := fixed.DecodeResponse(readFile(t, "responses", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			golden.JSON(t, filepath.Join("responses", name+".canonical.golden"), resp)
			out, err := fixed.EncodeResponse(resp, clientRequest())
			if err != nil {
				t.Fatal(err)
			}
			golden.JSONBytes(t, filepath.Join("responses", name+".client.golden"), out)
		})
	}
}

// TestGoldenChatLikeStream encodes the events a chat-completions upstream
// decodes into: parallel tool calls whose argument deltas interleave, the
// finish before the usage, and cache-write tokens.
func TestGoldenChatLikeStream(t *testing.T) {
	evs := []wire.Event{
		{Kind: wire.EventStart, ID: "chatcmpl-9", Model: "claude-x"},
		{Kind: wire.EventReasoning, Text: "Two cities."},
		{Kind: wire.EventText, Text: "Checking both."},
		{Kind: wire.EventToolCall, Index: 0, ToolCallID: "call_1", ToolName: "get_weather"},
		{Kind: wire.EventToolArgs, Index: 0, Text: `{"city":`},
		{Kind: wire.EventToolCall, Index: 1, ToolCallID: "call_2", ToolName: "get_weather"},
		{Kind: wire.EventToolArgs, Index: 1, Text: `{"city":"Rome"}`},
		{Kind: wire.EventToolArgs, Index: 0, Text: `"Paris"}`},
		{Kind: wire.EventFinish, Finish: wire.FinishToolCalls},
		{Kind: wire.EventUsage, Usage: wire.Usage{Prompt: 100, Completion: 30, Cached: 40, CacheWrite: 20, Reasoning: 10}},
	}
	out := encodeStream(clientRequest(), evs)
	golden.Bytes(t, filepath.Join("streams", "chat_like.client.golden"), out)

	// What the client received decodes back to the same calls and usage.
	back := decodeStream(t, out)
	// The start names the client's model and a Responses id; the usage
	// comes with the terminal event, before its finish.
	want := append([]wire.Event(nil), evs...)
	want[0] = wire.Event{Kind: wire.EventStart, ID: "resp_chatcmpl-9", Model: "my-alias"}
	n := len(want)
	want[n-2], want[n-1] = want[n-1], want[n-2]
	assertEvents(t, back, want)
}

func assertEvents(t *testing.T, got, want []wire.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d:\n%+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

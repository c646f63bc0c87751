package gemini

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/golden"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

var eventNames = [...]string{
	wire.EventStart: "start", wire.EventText: "text", wire.EventReasoning: "reasoning",
	wire.EventToolCall: "tool_call", wire.EventToolArgs: "tool_args", wire.EventFinish: "finish",
	wire.EventUsage: "usage", wire.EventError: "error",
}

// dumpEvents writes one line per event.
func dumpEvents(evs []wire.Event) []byte {
	var b bytes.Buffer
	for _, ev := range evs {
		b.WriteString(eventNames[ev.Kind])
		switch ev.Kind {
		case wire.EventStart:
			fmt.Fprintf(&b, " id=%q model=%q", ev.ID, ev.Model)
		case wire.EventText, wire.EventReasoning, wire.EventError:
			fmt.Fprintf(&b, " %q", ev.Text)
		case wire.EventToolCall:
			fmt.Fprintf(&b, " #%d id=%q name=%q", ev.Index, ev.ToolCallID, ev.ToolName)
		case wire.EventToolArgs:
			fmt.Fprintf(&b, " #%d %q", ev.Index, ev.Text)
		case wire.EventFinish:
			fmt.Fprintf(&b, " %s", ev.Finish)
		case wire.EventUsage:
			u := ev.Usage
			fmt.Fprintf(&b, " prompt=%d completion=%d cached=%d cache_write=%d reasoning=%d", u.Prompt, u.Completion, u.Cached, u.CacheWrite, u.Reasoning)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// sseData splits an SSE transcript into the data of its events (CRLF or
// LF framed, as Gemini sends CRLF).
func sseData(t testing.TB, raw []byte) [][]byte {
	t.Helper()
	raw = bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	var out [][]byte
	for _, ev := range bytes.Split(raw, []byte("\n\n")) {
		ev = bytes.TrimSpace(ev)
		if len(ev) == 0 {
			continue
		}
		data, ok := bytes.CutPrefix(ev, []byte("data: "))
		if !ok || bytes.Contains(data, []byte("\n")) {
			t.Fatalf("not one data line: %q", ev)
		}
		out = append(out, data)
	}
	return out
}

// arrayData splits a streamed JSON array into its elements.
func arrayData(t testing.TB, raw []byte) [][]byte {
	t.Helper()
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		t.Fatalf("client array is not a JSON array: %v: %s", err, raw)
	}
	out := make([][]byte, len(elems))
	for i, e := range elems {
		out[i] = e
	}
	return out
}

func decodeAll(t testing.TB, units [][]byte) []wire.Event {
	t.Helper()
	d := Adapter{}.NewStreamDecoder()
	var evs []wire.Event
	for _, u := range units {
		if err := d.Decode(u, func(ev wire.Event) { evs = append(evs, ev) }); err != nil {
			t.Fatalf("decode %s: %v", u, err)
		}
	}
	return evs
}

func encodeAll(a Adapter, evs []wire.Event) []byte {
	e := a.NewStreamEncoder(&wire.Request{Model: "client-model", Stream: true})
	var out []byte
	for _, ev := range evs {
		out = e.Encode(out, ev)
	}
	return e.End(out)
}

// TestStreamGolden decodes each upstream transcript into canonical events
// and encodes them in both client framings. The client streams must decode
// again to the same text, tool calls and usage.
func TestStreamGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/streams/*.sse")
	evFiles, _ := filepath.Glob("testdata/streams/*.events.json")
	if len(files) == 0 || len(evFiles) == 0 {
		t.Fatal("no stream transcripts")
	}
	for _, f := range append(files, evFiles...) {
		name := strings.TrimPrefix(f, "testdata/")
		t.Run(name, func(t *testing.T) {
			var evs []wire.Event
			if strings.HasSuffix(f, ".sse") {
				evs = decodeAll(t, sseData(t, readFile(t, name)))
				golden.Bytes(t, name+".events.golden", dumpEvents(evs))
			} else if err := json.Unmarshal(readFile(t, name), &evs); err != nil {
				t.Fatal(err)
			}
			sse := encodeAll(Adapter{}, evs)
			golden.Bytes(t, name+".client.sse.golden", sse)
			arr := encodeAll(Adapter{Array: true}, evs)
			golden.Bytes(t, name+".client.array.golden", arr)

			want := summarize(evs)
			if got := summarize(decodeAll(t, sseData(t, sse))); got != want {
				t.Errorf("SSE client stream decodes to\n%s\nwant\n%s", got, want)
			}
			if got := summarize(decodeAll(t, arrayData(t, arr))); got != want {
				t.Errorf("array client stream decodes to\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// summarize is what a client must get from a stream whatever its
// framing: the text, reasoning, each tool call's name and arguments, the
// last usage and the finish reason. Ids are made up per format.
func summarize(evs []wire.Event) string {
	var text, reasoning strings.Builder
	var names []string
	var args []string
	var usage wire.Usage
	var finish wire.FinishReason
	var errs []string
	for _, ev := range evs {
		switch ev.Kind {
		case wire.EventText:
			text.WriteString(ev.Text)
		case wire.EventReasoning:
			reasoning.WriteString(ev.Text)
		case wire.EventToolCall:
			for len(names) <= ev.Index {
				names, args = append(names, ""), append(args, "")
			}
			names[ev.Index] = ev.ToolName
		case wire.EventToolArgs:
			args[ev.Index] += ev.Text
		case wire.EventUsage:
			usage = ev.Usage
		case wire.EventFinish:
			finish = ev.Finish
		case wire.EventError:
			errs = append(errs, ev.Text)
		}
	}
	for i := range args {
		args[i] = argsText(json.RawMessage(args[i]))
	}
	// Gemini has no cache-write count: it stays inside the prompt.
	usage.CacheWrite = 0
	return fmt.Sprintf("text=%q reasoning=%q calls=%q args=%q usage=%+v finish=%s errors=%q",
		text.String(), reasoning.String(), names, args, usage, finish, errs)
}

func TestStreamEncoderEndsEmptyArray(t *testing.T) {
	if got := string(encodeAll(Adapter{Array: true}, nil)); got != "[]" {
		t.Fatalf("empty array stream = %q", got)
	}
	if got := string(encodeAll(Adapter{}, nil)); got != "" {
		t.Fatalf("empty SSE stream = %q", got)
	}
}

// TestStreamErrorMatchesGateway: an error event ends the client stream
// exactly as the gateway's StreamErrorEvent does (its golden file).
func TestStreamErrorMatchesGateway(t *testing.T) {
	ev := wire.Event{Kind: wire.EventError, Text: "upstream stream ended unexpectedly"}
	const body = `{"error":{"code":502,"message":"upstream stream ended unexpectedly","status":"UNAVAILABLE","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"UPSTREAM_ERROR","domain":"lurus.cn"}]}}`
	text := wire.Event{Kind: wire.EventText, Text: "a"}

	sse := Adapter{}.NewStreamEncoder(&wire.Request{})
	out := sse.Encode(nil, text)
	n := len(out)
	out = sse.Encode(out, ev)
	if got := string(out[n:]); got != "data: "+body+"\r\n\r\n" {
		t.Fatalf("SSE error = %q", got)
	}
	if more := sse.End(out); len(more) != len(out) {
		t.Fatalf("End after an error wrote %q", more[len(out):])
	}

	arr := Adapter{Array: true}.NewStreamEncoder(&wire.Request{})
	out = arr.Encode(nil, text)
	n = len(out)
	out = arr.End(arr.Encode(out, ev))
	if got := string(out[n:]); got != ",\r\n"+body+"]" {
		t.Fatalf("array error = %q", got)
	}
}

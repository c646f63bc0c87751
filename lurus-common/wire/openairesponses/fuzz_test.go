package openairesponses

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

func addSeeds(f *testing.F, pattern string) {
	paths, _ := filepath.Glob(filepath.Join("testdata", pattern))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzReadRequest: the reader never panics, and a request it accepts and
// the writer can express is written as a body the reader accepts again,
// which writes to the same bytes.
func FuzzReadRequest(f *testing.F) {
	addSeeds(f, "requests/*.json")
	f.Add([]byte(`{"model":"m","input":[{"type":"function_call_output","call_id":"c","output":[{"type":"input_image","image_url":"data:image/png;base64,AA"}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req wire.Request
		if err := fixed.ReadRequest(body, &req); err != nil {
			return
		}
		first, err := fixed.WriteRequest(&req, openAIUpstream)
		if err != nil {
			return
		}
		var again wire.Request
		if err := fixed.ReadRequest(first.Body, &again); err != nil {
			t.Fatalf("written body refused: %v\n%s", err, first.Body)
		}
		second, err := fixed.WriteRequest(&again, openAIUpstream)
		if err != nil {
			t.Fatalf("re-read request not writable: %v", err)
		}
		if !bytes.Equal(first.Body, second.Body) {
			t.Fatalf("write is not stable:\n%s\n%s", first.Body, second.Body)
		}
	})
}

// FuzzStreamDecoder: the decoder never panics on any event data, and the
// events it produced, encoded as a client stream, decode again with the
// same text.
func FuzzStreamDecoder(f *testing.F) {
	addSeeds(f, "streams/*.sse")
	f.Fuzz(func(t *testing.T, transcript []byte) {
		dec := fixed.NewStreamDecoder()
		var evs []wire.Event
		for _, data := range sseData(t, transcript) {
			if dec.Decode(data, func(ev wire.Event) { evs = append(evs, ev) }) != nil {
				break
			}
		}
		out := encodeStream(clientRequest(), evs)
		back := fixed.NewStreamDecoder()
		var again []wire.Event
		for _, data := range sseData(t, out) {
			if err := back.Decode(data, func(ev wire.Event) { again = append(again, ev) }); err != nil {
				t.Fatalf("own stream refused: %v\n%s", err, out)
			}
		}
		if a, b := streamText(evs), streamText(again); a != b {
			t.Fatalf("text %q came back as %q", a, b)
		}
	})
}

// streamText is the text and reasoning of a stream up to its first error.
func streamText(evs []wire.Event) string {
	var sb strings.Builder
	for _, ev := range evs {
		switch ev.Kind {
		case wire.EventText, wire.EventReasoning:
			sb.WriteString(ev.Text)
		case wire.EventError:
			return sb.String()
		}
	}
	return sb.String()
}

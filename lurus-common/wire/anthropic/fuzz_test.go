package anthropic

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

func addSeeds(f *testing.F, glob string) {
	files, _ := filepath.Glob(glob)
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzReadRequest: the reader never panics; a request it accepts and the
// writer can express is written as a body the reader accepts again, and
// writing that gives the same body (the writer's normal form is stable).
func FuzzReadRequest(f *testing.F) {
	addSeeds(f, "testdata/requests/*.json")
	f.Fuzz(func(t *testing.T, body []byte) {
		req := &wire.Request{}
		if err := (Adapter{}).ReadRequest(body, req); err != nil {
			return
		}
		if req.MaxOutputTokens <= 0 {
			req.MaxOutputTokens = 1
		}
		hr, err := Adapter{}.WriteRequest(req, testUpstream)
		if err != nil {
			return
		}
		back := &wire.Request{}
		if err := (Adapter{}).ReadRequest(hr.Body, back); err != nil {
			t.Fatalf("written body not readable: %v\n%s", err, hr.Body)
		}
		hr2, err := Adapter{}.WriteRequest(back, testUpstream)
		if err != nil {
			t.Fatalf("rewriting failed: %v\n%s", err, hr.Body)
		}
		if !bytes.Equal(hr.Body, hr2.Body) {
			t.Fatalf("rewritten body differs\n%s\n%s", hr.Body, hr2.Body)
		}
	})
}

// FuzzStreamDecoder feeds each line of the input as one event's data. The
// decoder never panics; the events it gives (up to its first error)
// encode as a stream the SDKs accept, which decodes to the same meaning.
func FuzzStreamDecoder(f *testing.F) {
	files, _ := filepath.Glob("testdata/streams/*.sse")
	for _, name := range files {
		b, _ := os.ReadFile(name)
		var data [][]byte
		for _, line := range bytes.Split(b, []byte("\n")) {
			if d, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
				data = append(data, d)
			}
		}
		f.Add(bytes.Join(data, []byte("\n")))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d := Adapter{}.NewStreamDecoder()
		var evs []wire.Event
		for _, line := range bytes.Split(in, []byte("\n")) {
			if d.Decode(line, func(e wire.Event) { evs = append(evs, e) }) != nil {
				break
			}
		}
		for i, ev := range evs {
			if ev.Kind == wire.EventError {
				evs = evs[:i+1]
				break
			}
		}
		ended := len(evs) == 0 || evs[len(evs)-1].Kind != wire.EventError
		out := encodeAll(evs, "m", ended)
		if !ended && !bytes.HasPrefix(out, []byte("event: message_start")) {
			return // an error before any output: a lone error event
		}
		checkSDKStream(t, out)
		got, want := summarize(decodeAll(t, parseSSE(t, out))), summarize(evs)
		if want.Finish == "" && ended {
			want.Finish = wire.FinishStop
		}
		if !ended {
			got.Usage, want.Usage = wire.Usage{}, wire.Usage{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("client stream means\n%+v\nwant\n%+v\n%s", got, want, out)
		}
	})
}

package openaichat

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

func addFiles(f *testing.F, pattern string, each func([]byte)) {
	files, _ := filepath.Glob(pattern)
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		each(b)
	}
}

// FuzzReadRequest: reading never panics, and a request read without
// refusals is written for every provider type as a body that reads again.
func FuzzReadRequest(f *testing.F) {
	addFiles(f, "testdata/requests/*.json", func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := read(t, body)
		if err != nil {
			return
		}
		for _, u := range upstreams {
			hr, err := Adapter{}.WriteRequest(req, u)
			if err != nil {
				var un *wire.Unsupported
				if !errors.As(err, &un) {
					t.Fatalf("%s: %v", u.Type, err)
				}
				continue
			}
			if _, err := read(t, hr.Body); err != nil {
				t.Fatalf("%s: written body does not read: %v\n%s", u.Type, err, hr.Body)
			}
		}
		if len(req.Refused) == 0 && req.TopK == nil {
			if _, err := (Adapter{}).WriteRequest(req, wire.Upstream{Type: internalapi.TypeOpenAI}); err != nil {
				t.Fatalf("a request without refusals is refused: %v", err)
			}
		}
	})
}

// FuzzStreamDecoder: decoding any event data never panics, and the events
// of accepted data, encoded for a client, decode again.
func FuzzStreamDecoder(f *testing.F) {
	addFiles(f, "testdata/streams/*.sse", func(b []byte) {
		for _, d := range sseData(f, b) {
			f.Add(d)
		}
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		var evs []wire.Event
		if err := (Adapter{}).NewStreamDecoder().Decode(data, func(ev wire.Event) { evs = append(evs, ev) }); err != nil {
			return
		}
		out := encodeStream(evs, &wire.Request{Model: "m", Stream: true, IncludeUsage: true})
		dec := Adapter{}.NewStreamDecoder()
		for _, d := range sseData(t, out) {
			if err := dec.Decode(d, func(wire.Event) {}); err != nil {
				t.Fatalf("encoded chunk does not decode: %v\n%s", err, d)
			}
		}
	})
}

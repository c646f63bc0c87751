package gemini

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// FuzzReadRequest: reading never panics, and a body read without refusals
// is either refused by the writer with a reason or written as a body the
// reader accepts again without refusals.
func FuzzReadRequest(f *testing.F) {
	files, _ := filepath.Glob("testdata/requests/*.json")
	for _, name := range files {
		for op := range 3 {
			f.Add(readFile(f, filepath.Base(filepath.Dir(name))+"/"+filepath.Base(name)), uint8(op))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, op uint8) {
		req := wire.Request{Op: wire.Op(op % 3), Model: "m"}
		if err := (Adapter{}).ReadRequest(body, &req); err != nil || len(req.Refused) > 0 {
			return
		}
		hr, err := Adapter{}.WriteRequest(&req, testUpstream)
		if err != nil {
			var u *wire.Unsupported
			if !errors.As(err, &u) && apperr.KindOf(err) != apperr.KindInvalid {
				t.Fatalf("write failed without a reason: %v", err)
			}
			return
		}
		again := wire.Request{Op: req.Op, Model: "m"}
		if err := (Adapter{}).ReadRequest(hr.Body, &again); err != nil {
			t.Fatalf("written body not readable: %v\n%s", err, hr.Body)
		}
		if len(again.Refused) > 0 {
			t.Fatalf("written body refused %q\n%s", again.Refused, hr.Body)
		}
	})
}

// FuzzStreamDecode: each line is one stream unit. Decoding never panics,
// and what it decoded, encoded for a client in either framing, decodes
// again to the same stream.
func FuzzStreamDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/streams/*.sse")
	for _, name := range files {
		units := sseData(f, readFile(f, "streams/"+filepath.Base(name)))
		f.Add(bytes.Join(units, []byte("\n")))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := Adapter{}.NewStreamDecoder()
		var evs []wire.Event
		for _, unit := range bytes.Split(data, []byte("\n")) {
			_ = d.Decode(unit, func(ev wire.Event) { evs = append(evs, ev) })
		}
		want := summarize(evs)
		if got := summarize(decodeAll(t, sseData(t, encodeAll(Adapter{}, evs)))); got != want {
			t.Fatalf("SSE re-decode\n got %s\nwant %s", got, want)
		}
		if got := summarize(decodeAll(t, arrayData(t, encodeAll(Adapter{Array: true}, evs)))); got != want {
			t.Fatalf("array re-decode\n got %s\nwant %s", got, want)
		}
	})
}

package biz

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/tidwall/gjson"
)

// streamEndpoints are the endpoints whose streams the fuzz targets read;
// a fuzz input picks one by index.
var streamEndpoints = []Endpoint{EndpointChatCompletions, EndpointCompletions, EndpointResponses,
	EndpointMessages, EndpointStreamGenerateContent}

// seedStreams adds every golden transcript (usage and cut) as a seed,
// with ext one of ".sse" or ".json". The endpoint index follows the file
// name's prefix.
func seedStreams(f *testing.F, ext string, add func(data []byte, ep uint8)) {
	f.Helper()
	for _, dir := range []string{"usage", "cut"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*"+ext))
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			base := filepath.Base(file)
			var ep uint8
			switch {
			case bytes.HasPrefix([]byte(base), []byte("openai_completions")):
				ep = 1
			case bytes.HasPrefix([]byte(base), []byte("openai_responses")):
				ep = 2
			case bytes.HasPrefix([]byte(base), []byte("anthropic")):
				ep = 3
			case bytes.HasPrefix([]byte(base), []byte("gemini")):
				ep = 4
			}
			add(data, ep)
		}
	}
}

// frameAll feeds data to fr in pieces of step bytes and returns the
// units' raw bytes joined, and each unit's document.
func frameAll(fr Framer, data []byte, step int) (joined []byte, docs [][]byte) {
	for off := 0; off < len(data); off += step {
		fr.Feed(data[off:min(off+step, len(data))])
		for {
			raw, doc, ok := fr.Next()
			if !ok {
				break
			}
			joined = append(joined, raw...)
			docs = append(docs, bytes.Clone(doc))
		}
	}
	return joined, docs
}

// checkReframe is the framing property: the units joined, then what is
// left, reproduce the input exactly, whatever the read sizes.
func checkReframe(t *testing.T, fr Framer, data []byte, step uint8) {
	joined, _ := frameAll(fr, data, int(step%64)+1)
	if !bytes.HasPrefix(data, joined) {
		t.Fatalf("units joined are not a prefix of the input:\n%q\n%q", joined, data)
	}
	if got := append(joined, fr.Rest()...); !bytes.Equal(got, data) {
		t.Fatalf("units + rest = %q, input %q", got, data)
	}
}

func FuzzSSEFramer(f *testing.F) {
	seedStreams(f, ".sse", func(data []byte, _ uint8) { f.Add(data, uint8(7)) })
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		checkReframe(t, &SSEFramer{}, data, step)
	})
}

func FuzzArrayFramer(f *testing.F) {
	seedStreams(f, ".json", func(data []byte, _ uint8) { f.Add(data, uint8(5)) })
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		checkReframe(t, NewArrayFramer(), data, step)
	})
}

// FuzzStreamUsage meters a stream of any format through a StreamEditor
// with an output allowance: usage is never negative, a cut never bills
// more output than was held, and a terminal sequence is valid JSON in
// each of its data lines (or array element).
func FuzzStreamUsage(f *testing.F) {
	seedStreams(f, ".sse", func(data []byte, ep uint8) { f.Add(data, ep, int64(3), false) })
	seedStreams(f, ".json", func(data []byte, ep uint8) { f.Add(data, uint8(4), int64(3), true) })
	f.Fuzz(func(t *testing.T, data []byte, epi uint8, held int64, array bool) {
		ep := streamEndpoints[int(epi)%len(streamEndpoints)]
		var fr Framer = &SSEFramer{}
		if array {
			ep, fr = EndpointStreamGenerateContent, NewArrayFramer()
		}
		m := NewMeter(ep)
		ed := &StreamEditor{Meter: m, HeldOutput: max(held, 0), Tokens: &wordCounter{}, ClientUsage: true,
			PromptTokens: func() int64 { return 1 }}
		_, docs := frameAll(fr, data, 13)
		for _, doc := range docs {
			ed.Edit(ep, doc, doc)
			if ed.Cut() {
				break
			}
		}
		u, _ := m.Usage()
		checkUsage(t, u)
		if !ed.Cut() {
			return
		}
		cu, _ := ed.CutUsage()
		checkUsage(t, cu)
		if cu.Completion > held {
			t.Fatalf("cut usage %+v bills more output than the %d held", cu, held)
		}
		term := ed.Terminal(ep, array, true)
		if array {
			if !gjson.ValidBytes(term) {
				t.Fatalf("terminal %q is not JSON", term)
			}
			return
		}
		tf := &SSEFramer{}
		tf.Feed(term)
		for {
			_, doc, ok := tf.Next()
			if !ok {
				break
			}
			if !bytes.Equal(doc, doneMark) && !gjson.ValidBytes(doc) {
				t.Fatalf("terminal event data %q is not JSON", doc)
			}
		}
		if len(tf.Rest()) != 0 {
			t.Fatalf("terminal %q ends mid-event", term)
		}
	})
}

// FuzzMeterBody reads a whole JSON answer of any format: usage is never
// negative.
func FuzzMeterBody(f *testing.F) {
	seedStreams(f, ".json", func(data []byte, ep uint8) { f.Add(data, ep) })
	f.Fuzz(func(t *testing.T, data []byte, epi uint8) {
		m := NewMeter([]Endpoint{EndpointChatCompletions, EndpointResponses, EndpointEmbeddings,
			EndpointMessages, EndpointGenerateContent}[int(epi)%5])
		m.Body(data)
		u, _ := m.Usage()
		checkUsage(t, u)
	})
}

func checkUsage(t *testing.T, u Usage) {
	t.Helper()
	if u.Prompt < 0 || u.Completion < 0 || u.Cached < 0 || u.CacheWrite < 0 || u.Reasoning < 0 {
		t.Fatalf("negative usage %+v", u)
	}
}

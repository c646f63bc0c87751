package biz

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// The pass-through hot path per format: metering a stream's units, and a
// whole stream through PumpStream with the allowance check, the terminal
// bookkeeping and the model rename on. They guard the cost of asking the
// wire adapters instead of switching on the format.

var benchStreams = []struct {
	name, file string
	ep         Endpoint
	array      bool
	from       string
}{
	{"openai_chat", "openai_chat_stream.sse", EndpointChatCompletions, false, "gpt-4o-2024-08-06"},
	{"openai_responses", "openai_responses_stream.sse", EndpointResponses, false, "gpt-4.1"},
	{"anthropic", "anthropic_messages_stream.sse", EndpointMessages, false, "claude-sonnet-4-5"},
	{"gemini_sse", "gemini_stream.sse", EndpointStreamGenerateContent, false, ""},
	{"gemini_array", "gemini_stream_array.json", EndpointStreamGenerateContent, true, ""},
}

func readUsageFile(b *testing.B, name string) []byte {
	b.Helper()
	in, err := os.ReadFile(filepath.Join("testdata", "usage", name))
	if err != nil {
		b.Fatal(err)
	}
	return in
}

func BenchmarkMeterStream(b *testing.B) {
	for _, s := range benchStreams {
		b.Run(s.name, func(b *testing.B) {
			in := readUsageFile(b, s.file)
			var docs [][]byte
			var fr Framer = &SSEFramer{}
			if s.array {
				fr = NewArrayFramer()
			}
			fr.Feed(in)
			for {
				_, doc, ok := fr.Next()
				if !ok {
					break
				}
				docs = append(docs, doc)
			}
			m := NewMeter(s.ep)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				m.Reset(s.ep)
				for _, d := range docs {
					m.Event(d)
				}
				if _, ok := m.Usage(); !ok {
					b.Fatal("no usage")
				}
			}
		})
	}
}

func BenchmarkMeterBody(b *testing.B) {
	for _, s := range []struct {
		file string
		ep   Endpoint
	}{
		{"openai_chat.json", EndpointChatCompletions},
		{"anthropic_messages.json", EndpointMessages},
		{"gemini_generate.json", EndpointGenerateContent},
	} {
		b.Run(s.file, func(b *testing.B) {
			in := readUsageFile(b, s.file)
			m := NewMeter(s.ep)
			b.ReportAllocs()
			for b.Loop() {
				m.Reset(s.ep)
				m.Body(in)
			}
		})
	}
}

func BenchmarkStreamPassthrough(b *testing.B) {
	for _, s := range benchStreams {
		b.Run(s.name, func(b *testing.B) {
			in := readUsageFile(b, s.file)
			buf := make([]byte, 4096)
			m := NewMeter(s.ep)
			write := func([]byte) error { return nil }
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				m.Reset(s.ep)
				var fr Framer = &SSEFramer{}
				if s.array {
					fr = NewArrayFramer()
				}
				ed := &StreamEditor{Meter: m, From: s.from, To: "alias", HeldOutput: 1 << 30}
				p := PumpStream(&chunkReader{data: in, n: 512, err: io.EOF}, fr, ed, s.ep, write, buf)
				if p.Cut || p.UpstreamErr != nil {
					b.Fatal("stream did not end cleanly")
				}
			}
		})
	}
}

func BenchmarkRewriteRequestChat(b *testing.B) {
	body := readRequests(b, "chat")["chat_typical.json"]
	info, err := ParseRequest(EndpointChatCompletions, "", body, testMaxChoices)
	if err != nil {
		b.Fatal(err)
	}
	info.OutputCap, info.Stream = 1024, true
	buf := make([]byte, 0, len(body)+128)
	b.ReportAllocs()
	for b.Loop() {
		buf = append(buf[:0], body...)
		if _, err := RewriteRequest(EndpointChatCompletions, info, "gpt-4o-2024-08-06", "openai", buf); err != nil {
			b.Fatal(err)
		}
	}
}

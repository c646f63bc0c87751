package biz

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/golden"
)

// chunkReader returns data in pieces of n bytes, then err (io.EOF for a
// clean end), as a network read would.
type chunkReader struct {
	data []byte
	n    int
	err  error
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	k := min(r.n, len(r.data), len(p))
	copy(p, r.data[:k])
	r.data = r.data[k:]
	return k, nil
}

type usageGolden struct {
	Usage         Usage  `json:"usage"`
	FromUpstream  bool   `json:"from_upstream"`
	Client        string `json:"client,omitempty"`
	Units         int    `json:"units,omitempty"`
	UpstreamError bool   `json:"upstream_error,omitempty"`
	DeliveredText string `json:"delivered_text"`
}

func TestUsageGolden(t *testing.T) {
	cases := []struct {
		file      string
		ep        Endpoint
		stream    bool
		cut       bool
		array     bool
		hideUsage bool
		from, to  string
	}{
		{file: "openai_chat.json", ep: EndpointChatCompletions},
		{file: "openai_chat_stream.sse", ep: EndpointChatCompletions, stream: true},
		{file: "openai_chat_stream.sse", ep: EndpointChatCompletions, stream: true, hideUsage: true, from: "gpt-4o-2024-08-06", to: "my-alias"},
		{file: "openai_chat_stream_cut.sse", ep: EndpointChatCompletions, stream: true, cut: true},
		{file: "openai_chat_stream_nousage.sse", ep: EndpointChatCompletions, stream: true},
		{file: "openai_responses.json", ep: EndpointResponses},
		{file: "openai_responses_stream.sse", ep: EndpointResponses, stream: true, from: "gpt-4.1", to: "fast"},
		{file: "openai_embeddings.json", ep: EndpointEmbeddings},
		{file: "anthropic_messages.json", ep: EndpointMessages},
		{file: "anthropic_messages_stream.sse", ep: EndpointMessages, stream: true, from: "claude-sonnet-4-5", to: "claude-default"},
		{file: "anthropic_messages_stream_cut.sse", ep: EndpointMessages, stream: true, cut: true},
		// The same stream with events whose data spans several lines.
		{file: "anthropic_messages_stream_multiline.sse", ep: EndpointMessages, stream: true, from: "claude-sonnet-4-5", to: "claude-default"},
		{file: "gemini_generate.json", ep: EndpointGenerateContent},
		{file: "gemini_stream.sse", ep: EndpointStreamGenerateContent, stream: true},
		{file: "gemini_stream_array.json", ep: EndpointStreamGenerateContent, stream: true, array: true},
		{file: "gemini_stream_array_cut.json", ep: EndpointStreamGenerateContent, stream: true, array: true, cut: true},
	}
	for _, tc := range cases {
		name := tc.file
		if tc.hideUsage {
			name += ".hidden"
		}
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", "usage", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			m := NewMeter(tc.ep)
			var g usageGolden
			if !tc.stream {
				m.Body(in)
				m.Deliver(in)
			} else {
				var fr Framer = &SSEFramer{}
				if tc.array {
					fr = NewArrayFramer()
				}
				end := io.EOF
				if tc.cut {
					end = io.ErrUnexpectedEOF
				}
				var client bytes.Buffer
				ed := &StreamEditor{Meter: m, HideUsageChunk: tc.hideUsage, From: tc.from, To: tc.to}
				p := PumpStream(&chunkReader{data: in, n: 7, err: end}, fr, ed, tc.ep, func(b []byte) error {
					client.Write(b)
					client.WriteString("|") // shows the unit boundaries: one write per event
					return nil
				}, make([]byte, 64))
				g.Client, g.Units, g.UpstreamError = client.String(), p.Units, p.UpstreamErr != nil
			}
			g.Usage, g.FromUpstream = m.Usage()
			g.DeliveredText = string(m.DeliveredText())
			out, _ := json.MarshalIndent(g, "", "  ")
			golden.Bytes(t, filepath.Join("usage", name+".golden"), append(out, '\n'))
		})
	}
}

func TestMeterLastValueWins(t *testing.T) {
	m := NewMeter(EndpointMessages)
	m.Event([]byte(`{"type":"message_start","message":{"usage":{"input_tokens":5,"output_tokens":1}}}`))
	m.Event([]byte(`{"type":"message_delta","usage":{"output_tokens":10}}`))
	m.Event([]byte(`{"type":"message_delta","usage":{"output_tokens":12}}`))
	u, ok := m.Usage()
	if !ok || u.Prompt != 5 || u.Completion != 12 {
		t.Fatalf("got %+v %v, want prompt 5 completion 12 (last value, not a sum)", u, ok)
	}
}

func TestPromptText(t *testing.T) {
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"hello world"},{"role":"user","content":[{"type":"text","text":"second"}]}],"system":"be brief"}`)
	got := string(PromptText(body))
	want := "hello world\nsecond\nbe brief\n"
	if got != want {
		t.Fatalf("PromptText = %q, want %q", got, want)
	}
}

package mockupstream

import (
	"net/http"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/golden"
)

// TestGoldenTranscripts pins the exact bytes of one stream per format (and
// the tool-call variants), so a change to the wire format shows up as a
// diff to review. Run with -update to accept a change.
func TestGoldenTranscripts(t *testing.T) {
	for _, tc := range []struct {
		name, path, body string
		header           http.Header
	}{
		{
			name: "openai_chat_stream", path: "/v1/chat/completions",
			header: hdr("Authorization", "Bearer k", HeaderUsage, "cached=1,reasoning=2"),
			body:   `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"say three tokens"}]}`,
		},
		{
			name: "openai_chat_tool_stream", path: "/v1/chat/completions",
			header: hdr("Authorization", "Bearer k"),
			body:   `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"weather"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}`,
		},
		{
			name: "openai_completions_stream", path: "/v1/completions",
			header: hdr("Authorization", "Bearer k"),
			body:   `{"model":"gpt-3.5-turbo-instruct","stream":true,"prompt":"say three tokens"}`,
		},
		{
			name: "openai_responses_stream", path: "/v1/responses",
			header: hdr("Authorization", "Bearer k"),
			body:   `{"model":"gpt-4o","stream":true,"input":"say three tokens"}`,
		},
		{
			name: "anthropic_messages_stream", path: "/v1/messages",
			header: hdr("X-Api-Key", "k", HeaderUsage, "cached=4,cache_write=2"),
			body:   `{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"say three tokens"}]}`,
		},
		{
			name: "anthropic_tool_stream", path: "/v1/messages",
			header: hdr("X-Api-Key", "k"),
			body:   `{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"weather"}],"tools":[{"name":"get_weather","input_schema":{"type":"object"}}]}`,
		},
		{
			name: "gemini_stream_sse", path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
			header: hdr("X-Goog-Api-Key", "k", HeaderUsage, "reasoning=2"),
			body:   `{"contents":[{"role":"user","parts":[{"text":"say three tokens"}]}]}`,
		},
		{
			name: "openai_responses_tool_stream", path: "/v1/responses",
			header: hdr("Authorization", "Bearer k", HeaderToolCall, "get_weather"),
			body:   `{"model":"gpt-4o","stream":true,"input":"weather in paris"}`,
		},
		{
			name: "openai_chat_forced_tool_stream", path: "/v1/chat/completions",
			header: hdr("Authorization", "Bearer k", HeaderToolCall, "get_weather"),
			body:   `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"weather in paris"}]}`,
		},
		{
			name: "anthropic_forced_tool_stream", path: "/v1/messages",
			header: hdr("X-Api-Key", "k", HeaderToolCall, "get_weather"),
			body:   `{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"weather in paris"}]}`,
		},
		{
			name: "gemini_forced_tool_stream_sse", path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
			header: hdr("X-Goog-Api-Key", "k", HeaderToolCall, "get_weather"),
			body:   `{"contents":[{"role":"user","parts":[{"text":"weather in paris"}]}]}`,
		},
		{
			name: "gemini_stream_array", path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
			header: hdr("X-Goog-Api-Key", "k"),
			body:   `{"contents":[{"role":"user","parts":[{"text":"say three tokens"}]}]}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ts := newMock(t, Options{Defaults: Settings{Chunks: ptr(3)}})
			resp, got, err := call(t, nil, http.MethodPost, ts.URL+tc.path, tc.header, tc.body)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("%v %v %s", resp, err, got)
			}
			golden.Bytes(t, tc.name+".golden", got)
		})
	}
}

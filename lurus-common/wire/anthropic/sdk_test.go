package anthropic_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	sdk "github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire/anthropic"
)

// The official anthropic-sdk-go reads what the encoders produce: a
// translated stream through Message.Accumulate, a translated answer, and
// an error body.

func serve(t *testing.T, status int, contentType string, body []byte) sdk.Client {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(ts.Close)
	return sdk.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(ts.URL),
		option.WithAPIKey("k"), option.WithMaxRetries(0))
}

var params = sdk.MessageNewParams{Model: "alias", MaxTokens: 64,
	Messages: []sdk.MessageParam{sdk.NewUserMessage(sdk.NewTextBlock("hi"))}}

// openAIStream is a canonical stream as a chat-completions upstream gives
// it: usage after the finish, two tool calls with argument deltas.
var openAIStream = []wire.Event{
	{Kind: wire.EventStart, ID: "chatcmpl-1", Model: "gpt-4o"},
	{Kind: wire.EventReasoning, Text: "think"},
	{Kind: wire.EventText, Text: "Hel"}, {Kind: wire.EventText, Text: "lo"},
	{Kind: wire.EventToolCall, Index: 0, ToolCallID: "call_a", ToolName: "get_weather"},
	{Kind: wire.EventToolArgs, Index: 0, Text: `{"location":`}, {Kind: wire.EventToolArgs, Index: 0, Text: `"Paris"}`},
	{Kind: wire.EventToolCall, Index: 1, ToolCallID: "call_b", ToolName: "get_time"},
	{Kind: wire.EventFinish, Finish: wire.FinishToolCalls},
	{Kind: wire.EventUsage, Usage: wire.Usage{Prompt: 100, Completion: 30, Cached: 60, CacheWrite: 10, Reasoning: 5}},
}

func TestSDKAcceptsStream(t *testing.T) {
	enc := anthropic.Adapter{}.NewStreamEncoder(&wire.Request{Model: "alias"})
	var body []byte
	for _, ev := range openAIStream {
		body = enc.Encode(body, ev)
	}
	body = enc.End(body)
	client := serve(t, 200, "text/event-stream", body)
	stream := client.Messages.NewStreaming(context.Background(), params)
	var msg sdk.Message
	for stream.Next() {
		if err := msg.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 4 {
		t.Fatalf("content = %s", msg.RawJSON())
	}
	c := msg.Content
	if c[0].Type != "thinking" || c[0].Thinking != "think" || c[1].Text != "Hello" ||
		c[2].Name != "get_weather" || c[2].ID != "call_a" || string(c[2].Input) != `{"location":"Paris"}` ||
		c[3].Name != "get_time" || string(c[3].Input) != `{}` {
		t.Errorf("content = %s", msg.RawJSON())
	}
	u := msg.Usage
	if msg.StopReason != sdk.StopReasonToolUse || msg.Model != "alias" || msg.ID != "chatcmpl-1" ||
		u.InputTokens != 30 || u.CacheReadInputTokens != 60 || u.CacheCreationInputTokens != 10 || u.OutputTokens != 30 {
		t.Errorf("message = %s", msg.RawJSON())
	}
}

func TestSDKAcceptsAnswer(t *testing.T) {
	resp := &wire.Response{ID: "r1", Finish: wire.FinishStop, Usage: wire.Usage{Prompt: 9, Completion: 2},
		Parts: []wire.Part{{Kind: wire.PartText, Text: "ok"}, {Kind: wire.PartToolCall, ToolCall: &wire.ToolCall{ID: "c", Name: "f", Arguments: `{"a":[1]}`}}}}
	body, err := anthropic.Adapter{}.EncodeResponse(resp, &wire.Request{Model: "alias"})
	if err != nil {
		t.Fatal(err)
	}
	client := serve(t, 200, "application/json", body)
	msg, err := client.Messages.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 2 || msg.Content[0].Text != "ok" || string(msg.Content[1].Input) != `{"a":[1]}` ||
		msg.StopReason != sdk.StopReasonEndTurn || msg.Usage.InputTokens != 9 || msg.Usage.OutputTokens != 2 {
		t.Errorf("message = %s", msg.RawJSON())
	}
}

func TestSDKReadsError(t *testing.T) {
	body := anthropic.Adapter{}.RenderError(400, "UNSUPPORTED_PARAMETER", "parameter logprobs is not supported by anthropic models")
	client := serve(t, 400, "application/json", body)
	_, err := client.Messages.New(context.Background(), params)
	var apiErr *sdk.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 {
		t.Fatalf("err = %v", err)
	}
	if got := (anthropic.Adapter{}).DecodeError([]byte(apiErr.RawJSON())); got != "parameter logprobs is not supported by anthropic models" {
		t.Errorf("message = %q from %s", got, apiErr.RawJSON())
	}
}

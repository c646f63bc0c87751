package mockupstream

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"
)

// The official anthropic-sdk-go against the mock: JSON, streaming through
// Message.Accumulate, tool use and token counting.

func newAnthropicClient(t *testing.T, baseURL string, opts ...option.RequestOption) anthropic.Client {
	t.Helper()
	return anthropic.NewClient(append([]option.RequestOption{
		option.WithoutEnvironmentDefaults(),
		option.WithBaseURL(baseURL),
		option.WithAPIKey("sk-ant-upstream"),
		option.WithMaxRetries(0),
	}, opts...)...)
}

func messageParams(text string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 256,
		System:    []anthropic.TextBlockParam{{Text: "you are terse"}},
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))},
	}
}

func weatherTool() []anthropic.ToolUnionParam {
	return []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{
		Name:        "get_weather",
		InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"input": map[string]any{"type": "string"}}},
	}}}
}

func TestAnthropicSDKMessage(t *testing.T) {
	_, ts := newMock(t, Options{})
	client := newAnthropicClient(t, ts.URL, option.WithHeader(HeaderUsage, "cached=6,cache_write=2"))
	msg, err := client.Messages.New(context.Background(), messageParams("one two three"))
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Text != ReplyText(5) || msg.StopReason != "end_turn" || msg.Model != "claude-sonnet-4-5" {
		t.Errorf("message = %s", msg.RawJSON())
	}
	u := msg.Usage
	// system "you are terse" (3) + "one two three" (3)
	if u.InputTokens != 6 || u.OutputTokens != 5 || u.CacheReadInputTokens != 6 || u.CacheCreationInputTokens != 2 {
		t.Errorf("usage = %s", u.RawJSON())
	}
}

func TestAnthropicSDKStream(t *testing.T) {
	_, ts := newMock(t, Options{})
	client := newAnthropicClient(t, ts.URL,
		option.WithHeader(HeaderChunks, "6"), option.WithHeader(HeaderGapMs, "1"),
		option.WithHeader(HeaderUsage, "cached=3,cache_write=1,reasoning=2"))
	stream := client.Messages.NewStreaming(context.Background(), messageParams("alpha beta"))
	var msg anthropic.Message
	var types []string
	var deltas int
	for stream.Next() {
		ev := stream.Current()
		types = append(types, ev.Type)
		if ev.Type == "content_block_delta" {
			if ev.Delta.Text != ChunkText(deltas) {
				t.Errorf("delta %d = %q", deltas, ev.Delta.Text)
			}
			deltas++
		}
		if err := msg.Accumulate(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if types[0] != "message_start" || types[1] != "content_block_start" || types[len(types)-1] != "message_stop" ||
		types[len(types)-2] != "message_delta" || types[len(types)-3] != "content_block_stop" || deltas != 6 {
		t.Errorf("event types = %q", types)
	}
	if msg.Content[0].Text != ReplyText(6) || msg.StopReason != "end_turn" {
		t.Errorf("message = %s", msg.RawJSON())
	}
	u := msg.Usage
	if u.InputTokens != 5 || u.OutputTokens != 6 || u.CacheReadInputTokens != 3 || u.CacheCreationInputTokens != 1 ||
		u.OutputTokensDetails.ThinkingTokens != 2 {
		t.Errorf("usage = %s", u.RawJSON())
	}
}

func TestAnthropicSDKToolUseStream(t *testing.T) {
	_, ts := newMock(t, Options{})
	client := newAnthropicClient(t, ts.URL, option.WithHeader(HeaderChunks, "3"))
	params := messageParams("weather in paris")
	params.Tools = weatherTool()
	stream := client.Messages.NewStreaming(context.Background(), params)
	var msg anthropic.Message
	pieces := 0
	for stream.Next() {
		ev := stream.Current()
		if ev.Type == "content_block_delta" && ev.Delta.Type == "input_json_delta" {
			pieces++
		}
		if err := msg.Accumulate(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if pieces != 3 {
		t.Errorf("input_json_delta pieces = %d", pieces)
	}
	if len(msg.Content) != 1 || msg.Content[0].Type != "tool_use" || msg.Content[0].Name != "get_weather" ||
		string(msg.Content[0].Input) != ToolArguments(3) || msg.StopReason != "tool_use" || msg.Usage.OutputTokens != 3 {
		t.Errorf("message = %s", msg.RawJSON())
	}

	resp, err := client.Messages.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Content[0].Type != "tool_use" || string(resp.Content[0].Input) != ToolArguments(3) {
		t.Errorf("message = %s", resp.RawJSON())
	}
}

func TestAnthropicSDKCountTokens(t *testing.T) {
	_, ts := newMock(t, Options{})
	client := newAnthropicClient(t, ts.URL)
	count, err := client.Messages.CountTokens(context.Background(), anthropic.MessageCountTokensParams{
		Model:    "claude-sonnet-4-5",
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("count these four words"))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if count.InputTokens != 4 {
		t.Errorf("input_tokens = %d", count.InputTokens)
	}
}

func TestAnthropicSDKErrors(t *testing.T) {
	_, ts := newMock(t, Options{})
	for _, status := range []int{401, 429, 500, 529} {
		client := newAnthropicClient(t, ts.URL, option.WithHeader(HeaderStatus, strconv.Itoa(status)))
		_, err := client.Messages.New(context.Background(), messageParams("x"))
		var apiErr *anthropic.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != status {
			t.Errorf("status %d: err = %v", status, err)
		}
	}

	client := newAnthropicClient(t, ts.URL, option.WithHeader(HeaderCutAfter, "1"))
	stream := client.Messages.NewStreaming(context.Background(), messageParams("x"))
	var msg anthropic.Message
	for stream.Next() {
		_ = msg.Accumulate(stream.Current())
	}
	if stream.Err() == nil {
		t.Fatal("a cut stream ended without error")
	}
	if msg.Content[0].Text != ReplyText(1) || msg.StopReason != "" {
		t.Errorf("before the cut: %s", msg.RawJSON())
	}
}

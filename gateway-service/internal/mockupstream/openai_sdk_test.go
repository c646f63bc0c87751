package mockupstream

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"
)

// These tests point the official openai-go client at the mock: if the SDK
// parses what the mock sends into the expected content and usage, the
// wire format is faithful enough for the gateway's E2E tests.

func newOpenAIClient(t *testing.T, baseURL string, opts ...option.RequestOption) openai.Client {
	t.Helper()
	return openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(baseURL),
		option.WithAPIKey("sk-upstream"),
		option.WithMaxRetries(0),
	}, opts...)...)
}

func chatParams(text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)},
	}
}

func TestOpenAISDKChat(t *testing.T) {
	_, ts := newMock(t, Options{})
	client := newOpenAIClient(t, ts.URL+"/v1/",
		option.WithHeader(HeaderUsage, "cached=2,cache_write=1,reasoning=4"))
	resp, err := client.Chat.Completions.New(context.Background(), chatParams("one two three"))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != ReplyText(DefaultChunks) {
		t.Errorf("content = %q", got)
	}
	if resp.Choices[0].FinishReason != "stop" || resp.Model != "gpt-4o-mini" {
		t.Errorf("finish %q model %q", resp.Choices[0].FinishReason, resp.Model)
	}
	u := resp.Usage
	if u.PromptTokens != 3 || u.CompletionTokens != 5 || u.TotalTokens != 8 ||
		u.PromptTokensDetails.CachedTokens != 2 || u.PromptTokensDetails.CacheWriteTokens != 1 ||
		u.CompletionTokensDetails.ReasoningTokens != 4 {
		t.Errorf("usage = %s", u.RawJSON())
	}
}

func TestOpenAISDKChatStream(t *testing.T) {
	for _, includeUsage := range []bool{true, false} {
		t.Run(map[bool]string{true: "include_usage", false: "no_include_usage"}[includeUsage], func(t *testing.T) {
			_, ts := newMock(t, Options{})
			client := newOpenAIClient(t, ts.URL+"/v1/", option.WithHeader(HeaderChunks, "7"), option.WithHeader(HeaderGapMs, "1"))
			params := chatParams("alpha beta")
			if includeUsage {
				params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			}
			stream := client.Chat.Completions.NewStreaming(context.Background(), params)
			var acc openai.ChatCompletionAccumulator
			var deltas []string
			usageChunks := 0
			for stream.Next() {
				chunk := stream.Current()
				if !acc.AddChunk(chunk) {
					t.Fatalf("accumulator refused chunk %s", chunk.RawJSON())
				}
				if len(chunk.Choices) == 0 {
					usageChunks++
					continue
				}
				if d := chunk.Choices[0].Delta.Content; d != "" {
					deltas = append(deltas, d)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if len(deltas) != 7 || deltas[3] != ChunkText(3) {
				t.Errorf("deltas = %q", deltas)
			}
			if got := acc.Choices[0].Message.Content; got != ReplyText(7) {
				t.Errorf("content = %q", got)
			}
			if acc.Choices[0].FinishReason != "stop" {
				t.Errorf("finish = %q", acc.Choices[0].FinishReason)
			}
			wantPrompt, wantCompletion, wantUsageChunks := int64(2), int64(7), 1
			if !includeUsage {
				wantPrompt, wantCompletion, wantUsageChunks = 0, 0, 0
			}
			if acc.Usage.PromptTokens != wantPrompt || acc.Usage.CompletionTokens != wantCompletion || usageChunks != wantUsageChunks {
				t.Errorf("usage = %+v, usage chunks %d", acc.Usage, usageChunks)
			}
		})
	}
}

func TestOpenAISDKToolCallStream(t *testing.T) {
	_, ts := newMock(t, Options{})
	client := newOpenAIClient(t, ts.URL+"/v1/", option.WithHeader(HeaderChunks, "4"))
	params := chatParams("weather please")
	params.Tools = []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
		Name:       "get_weather",
		Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"input": map[string]any{"type": "string"}}},
	})}
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	var acc openai.ChatCompletionAccumulator
	var finished []openai.FinishedChatCompletionToolCall
	pieces := 0
	for stream.Next() {
		chunk := stream.Current()
		if !acc.AddChunk(chunk) {
			t.Fatalf("accumulator refused chunk %s", chunk.RawJSON())
		}
		if len(chunk.Choices) > 0 && len(chunk.Choices[0].Delta.ToolCalls) > 0 && chunk.Choices[0].Delta.ToolCalls[0].Function.Arguments != "" {
			pieces++
		}
		if tc, ok := acc.JustFinishedToolCall(); ok {
			finished = append(finished, tc)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if pieces != 4 {
		t.Errorf("argument pieces = %d, want 4", pieces)
	}
	if len(finished) != 1 || finished[0].Name != "get_weather" || finished[0].Arguments != ToolArguments(4) || finished[0].ID == "" {
		t.Fatalf("finished tool calls = %+v", finished)
	}
	if acc.Choices[0].FinishReason != "tool_calls" || acc.Usage.CompletionTokens != 4 {
		t.Errorf("finish %q usage %+v", acc.Choices[0].FinishReason, acc.Usage)
	}

	// The JSON form carries the same call.
	resp, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	calls := resp.Choices[0].Message.ToolCalls
	if len(calls) != 1 || calls[0].Function.Name != "get_weather" || calls[0].Function.Arguments != ToolArguments(4) {
		t.Errorf("tool calls = %+v", calls)
	}
}

func TestOpenAISDKCompletions(t *testing.T) {
	_, ts := newMock(t, Options{})
	client := newOpenAIClient(t, ts.URL+"/v1/", option.WithHeader(HeaderChunks, "3"))
	params := openai.CompletionNewParams{
		Model:  "gpt-3.5-turbo-instruct",
		Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("say three words")},
	}
	resp, err := client.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Text != ReplyText(3) || resp.Usage.PromptTokens != 3 || resp.Usage.CompletionTokens != 3 {
		t.Errorf("completion = %s", resp.RawJSON())
	}

	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := client.Completions.NewStreaming(context.Background(), params)
	var text string
	var last openai.Completion
	for stream.Next() {
		c := stream.Current()
		if len(c.Choices) > 0 {
			text += c.Choices[0].Text
		}
		last = c
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if text != ReplyText(3) || last.Usage.CompletionTokens != 3 || last.Usage.TotalTokens != 6 {
		t.Errorf("streamed %q, last chunk %s", text, last.RawJSON())
	}
}

func TestOpenAISDKEmbeddings(t *testing.T) {
	_, ts := newMock(t, Options{})
	client := newOpenAIClient(t, ts.URL+"/v1/")
	for _, format := range []openai.EmbeddingNewParamsEncodingFormat{"", openai.EmbeddingNewParamsEncodingFormatFloat, openai.EmbeddingNewParamsEncodingFormatBase64} {
		t.Run("format="+string(format), func(t *testing.T) {
			resp, err := client.Embeddings.New(context.Background(), openai.EmbeddingNewParams{
				Model:          "text-embedding-3-small",
				Input:          openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a b c", "d"}},
				Dimensions:     openai.Int(4),
				EncodingFormat: format,
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Data) != 2 || resp.Usage.PromptTokens != 4 {
				t.Fatalf("embeddings = %s", resp.RawJSON())
			}
			for j, d := range resp.Data {
				if d.Index != int64(j) || len(d.Embedding) != 4 {
					t.Fatalf("embedding %d = %s", j, d.RawJSON())
				}
				for k, v := range d.Embedding {
					if v != EmbeddingValue(j, k) {
						t.Errorf("embedding[%d][%d] = %v, want %v", j, k, v, EmbeddingValue(j, k))
					}
				}
			}
		})
	}
}

func TestOpenAISDKResponses(t *testing.T) {
	_, ts := newMock(t, Options{})
	client := newOpenAIClient(t, ts.URL+"/v1/", option.WithHeader(HeaderUsage, "cached=1,reasoning=2"))
	params := responses.ResponseNewParams{
		Model:        "gpt-4o",
		Instructions: openai.String("be brief"),
		Input:        responses.ResponseNewParamsInputUnion{OfString: openai.String("one two three")},
	}
	resp, err := client.Responses.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if resp.OutputText() != ReplyText(5) || resp.Usage.InputTokens != 5 || resp.Usage.OutputTokens != 5 ||
		resp.Usage.InputTokensDetails.CachedTokens != 1 || resp.Usage.OutputTokensDetails.ReasoningTokens != 2 {
		t.Errorf("response = %s", resp.RawJSON())
	}

	types, events := readResponseEvents(t, client.Responses.NewStreaming(context.Background(), params, option.WithHeader(HeaderChunks, "6")))
	var text string
	var completed responses.Response
	for _, ev := range events {
		switch ev.Type {
		case "response.output_text.delta":
			text += ev.Delta
		case "response.completed":
			completed = ev.Response
		}
	}
	want := []string{"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
		"response.output_text.delta", "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"}
	if len(types) != len(want) {
		t.Fatalf("event types = %q", types)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Fatalf("event types = %q", types)
		}
	}
	if text != ReplyText(6) || completed.OutputText() != ReplyText(6) || completed.Usage.OutputTokens != 6 || completed.Status != "completed" {
		t.Errorf("text %q, completed %s", text, completed.RawJSON())
	}
}

// readResponseEvents reads a Responses stream to its end, checking that
// the events are numbered from 0 without a gap. It returns the event types
// with runs of one type collapsed, and the events.
func readResponseEvents(t *testing.T, stream *ssestream.Stream[responses.ResponseStreamEventUnion]) ([]string, []responses.ResponseStreamEventUnion) {
	t.Helper()
	var types []string
	var events []responses.ResponseStreamEventUnion
	for stream.Next() {
		ev := stream.Current()
		if n := len(types); n == 0 || types[n-1] != ev.Type {
			types = append(types, ev.Type)
		}
		if ev.SequenceNumber != int64(len(events)) {
			t.Errorf("%s has sequence_number %d, want %d", ev.Type, ev.SequenceNumber, len(events))
		}
		events = append(events, ev)
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	return types, events
}

// TestOpenAISDKAzure drives the Azure deployment routes with the plain
// client: same bodies, api-key header, api-version query.
func TestOpenAISDKAzure(t *testing.T) {
	srv, ts := newMock(t, Options{})
	client := openai.NewClient(
		option.WithBaseURL(ts.URL+"/openai/deployments/my-gpt/"),
		option.WithAPIKey(""),
		option.WithHeader("api-key", "azure-key"),
		option.WithQuery("api-version", "2024-10-21"),
		option.WithMaxRetries(0),
	)
	resp, err := client.Chat.Completions.New(context.Background(), chatParams("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != ReplyText(5) {
		t.Errorf("content = %q", resp.Choices[0].Message.Content)
	}
	last := srv.Requests(1)[0]
	if last.Path != "/openai/deployments/my-gpt/chat/completions" || last.Headers.Get("Api-Key") != "azure-key" ||
		last.URI != "/openai/deployments/my-gpt/chat/completions?api-version=2024-10-21" {
		t.Errorf("recorded %+v", last)
	}
}

func TestOpenAISDKErrors(t *testing.T) {
	_, ts := newMock(t, Options{})
	for _, status := range []int{401, 429, 500, 503} {
		client := newOpenAIClient(t, ts.URL+"/v1/", option.WithHeader(HeaderStatus, strconv.Itoa(status)))
		_, err := client.Chat.Completions.New(context.Background(), chatParams("x"))
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != status || apiErr.Message == "" || apiErr.Type == "" {
			t.Errorf("status %d: err = %v", status, err)
		}
	}

	client := newOpenAIClient(t, ts.URL+"/v1/", option.WithHeader(HeaderCutAfter, "2"))
	params := chatParams("x")
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if stream.Err() == nil {
		t.Fatal("a cut stream ended without error")
	}
	if acc.Choices[0].Message.Content != ReplyText(2) || acc.Usage.TotalTokens != 0 {
		t.Errorf("before the cut: content %q usage %+v", acc.Choices[0].Message.Content, acc.Usage)
	}
}

package mockupstream

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	anthropicoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/tidwall/gjson"
	"google.golang.org/genai"
)

// A tool call forced with X-Mock-Tool-Call, read by each official SDK from
// the mock directly: the SDK must parse a call of the named function with
// FixedToolArguments, in JSON and streamed, with the usual usage. The
// requests declare no tools, so nothing but the header makes the call.

const forcedTool = "get_weather"

// wantFixedArgs checks that args decode to FixedToolArguments' object.
func wantFixedArgs(t *testing.T, what string, args map[string]any) {
	t.Helper()
	var want map[string]any
	if err := json.Unmarshal([]byte(FixedToolArguments), &want); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(args, want) {
		t.Errorf("%s: arguments %v, want %v", what, args, want)
	}
}

func TestForcedToolCallOpenAIChat(t *testing.T) {
	_, ts := newMock(t, Options{})
	client := newOpenAIClient(t, ts.URL+"/v1/", option.WithHeader(HeaderToolCall, forcedTool), option.WithHeader(HeaderChunks, "4"))
	params := chatParams("weather in paris")

	resp, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	msg := resp.Choices[0].Message
	if len(msg.ToolCalls) != 1 || msg.ToolCalls[0].Type != "function" || msg.ToolCalls[0].ID == "" ||
		msg.ToolCalls[0].Function.Name != forcedTool || msg.ToolCalls[0].Function.Arguments != FixedToolArguments ||
		msg.Content != "" || resp.Choices[0].FinishReason != "tool_calls" || resp.Usage.CompletionTokens != 4 {
		t.Errorf("JSON reply = %s", resp.RawJSON())
	}

	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	var acc openai.ChatCompletionAccumulator
	var pieces []string
	var finished []openai.FinishedChatCompletionToolCall
	for stream.Next() {
		chunk := stream.Current()
		if !acc.AddChunk(chunk) {
			t.Fatalf("accumulator refused chunk %s", chunk.RawJSON())
		}
		if len(chunk.Choices) > 0 && len(chunk.Choices[0].Delta.ToolCalls) > 0 {
			d := chunk.Choices[0].Delta.ToolCalls[0]
			// The first delta names the call; the others carry only arguments.
			if first := len(pieces) == 0 && d.Function.Arguments == ""; first != (d.ID != "" && d.Function.Name == forcedTool) {
				t.Errorf("tool call delta %s", chunk.RawJSON())
			}
			if d.Function.Arguments != "" {
				pieces = append(pieces, d.Function.Arguments)
			}
		}
		if tc, ok := acc.JustFinishedToolCall(); ok {
			finished = append(finished, tc)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if want := FixedToolArgumentPieces(4); len(pieces) != 4 || !slices.Equal(pieces, want) {
		t.Errorf("argument deltas %q, want %q", pieces, want)
	}
	if len(finished) != 1 || finished[0].Name != forcedTool || finished[0].Arguments != FixedToolArguments || finished[0].ID == "" {
		t.Fatalf("finished tool calls = %+v", finished)
	}
	var args map[string]any
	if err := json.Unmarshal([]byte(finished[0].Arguments), &args); err != nil {
		t.Fatal(err)
	}
	wantFixedArgs(t, "chat stream", args)
	if acc.Choices[0].FinishReason != "tool_calls" || acc.Usage.CompletionTokens != 4 || acc.Usage.PromptTokens != 3 {
		t.Errorf("finish %q usage %+v", acc.Choices[0].FinishReason, acc.Usage)
	}
}

func TestForcedToolCallOpenAIResponses(t *testing.T) {
	_, ts := newMock(t, Options{})
	client := newOpenAIClient(t, ts.URL+"/v1/", option.WithHeader(HeaderToolCall, forcedTool),
		option.WithHeader(HeaderChunks, "3"), option.WithHeader(HeaderUsage, "reasoning=2"))
	params := responses.ResponseNewParams{
		Model: "gpt-4o",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("weather in paris")},
	}

	resp, err := client.Responses.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Output) != 1 || resp.Output[0].Type != "function_call" || resp.OutputText() != "" {
		t.Fatalf("JSON reply = %s", resp.RawJSON())
	}
	fc := resp.Output[0].AsFunctionCall()
	if fc.Name != forcedTool || fc.Arguments != FixedToolArguments || fc.CallID == "" || fc.ID == "" || fc.Status != "completed" ||
		resp.Usage.OutputTokens != 3 || resp.Usage.OutputTokensDetails.ReasoningTokens != 2 || resp.Usage.InputTokens != 3 {
		t.Errorf("JSON reply = %s", resp.RawJSON())
	}

	types, events := readResponseEvents(t, client.Responses.NewStreaming(context.Background(), params))
	var deltas []string
	var added, done responses.ResponseOutputItemUnion
	var argsDone string
	var completed responses.Response
	for _, ev := range events {
		switch ev.Type {
		case "response.output_item.added":
			added = ev.Item
		case "response.function_call_arguments.delta":
			if ev.ItemID != added.ID || ev.ItemID == "" {
				t.Errorf("delta for item %q, want %q", ev.ItemID, added.ID)
			}
			deltas = append(deltas, ev.Delta)
		case "response.function_call_arguments.done":
			argsDone = ev.Arguments
		case "response.output_item.done":
			done = ev.Item
		case "response.completed":
			completed = ev.Response
		}
	}
	want := []string{"response.created", "response.in_progress", "response.output_item.added",
		"response.function_call_arguments.delta", "response.function_call_arguments.done", "response.output_item.done", "response.completed"}
	if !slices.Equal(types, want) {
		t.Fatalf("event types = %q, want %q", types, want)
	}
	if !slices.Equal(deltas, FixedToolArgumentPieces(3)) || argsDone != FixedToolArguments {
		t.Errorf("deltas %q, done %q", deltas, argsDone)
	}
	if a := added.AsFunctionCall(); added.Type != "function_call" || a.Name != forcedTool || a.Arguments != "" || a.Status != "in_progress" {
		t.Errorf("item added = %s", added.RawJSON())
	}
	d := done.AsFunctionCall()
	if done.Type != "function_call" || d.Name != forcedTool || d.Arguments != FixedToolArguments || d.CallID != added.CallID || d.CallID == "" || done.ID != added.ID {
		t.Errorf("item done = %s", done.RawJSON())
	}
	var args map[string]any
	if err := json.Unmarshal([]byte(d.Arguments), &args); err != nil {
		t.Fatal(err)
	}
	wantFixedArgs(t, "responses stream", args)
	if len(completed.Output) != 1 || completed.Output[0].AsFunctionCall().Arguments != FixedToolArguments ||
		completed.Usage.OutputTokens != 3 || completed.Status != "completed" {
		t.Errorf("completed = %s", completed.RawJSON())
	}
}

func TestForcedToolCallAnthropic(t *testing.T) {
	_, ts := newMock(t, Options{})
	client := newAnthropicClient(t, ts.URL, anthropicoption.WithHeader(HeaderToolCall, forcedTool), anthropicoption.WithHeader(HeaderChunks, "5"))
	params := messageParams("weather in paris")

	msg, err := client.Messages.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Type != "tool_use" || msg.Content[0].Name != forcedTool || msg.Content[0].ID == "" ||
		string(msg.Content[0].Input) != FixedToolArguments || msg.StopReason != "tool_use" || msg.Usage.OutputTokens != 5 {
		t.Errorf("JSON reply = %s", msg.RawJSON())
	}

	stream := client.Messages.NewStreaming(context.Background(), params)
	var acc anthropic.Message
	var pieces []string
	for stream.Next() {
		ev := stream.Current()
		switch {
		case ev.Type == "content_block_start":
			if b := ev.ContentBlock; b.Type != "tool_use" || b.Name != forcedTool || b.JSON.Input.Raw() != "{}" {
				t.Errorf("content_block_start = %s", ev.RawJSON())
			}
		case ev.Type == "content_block_delta" && ev.Delta.Type == "input_json_delta":
			pieces = append(pieces, ev.Delta.PartialJSON)
		}
		if err := acc.Accumulate(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pieces, FixedToolArgumentPieces(5)) {
		t.Errorf("partial_json pieces %q", pieces)
	}
	if len(acc.Content) != 1 || acc.Content[0].Type != "tool_use" || acc.Content[0].Name != forcedTool ||
		acc.StopReason != "tool_use" || acc.Usage.OutputTokens != 5 || acc.Usage.InputTokens != 6 {
		t.Fatalf("accumulated = %s", acc.RawJSON())
	}
	var args map[string]any
	if err := json.Unmarshal(acc.Content[0].Input, &args); err != nil {
		t.Fatal(err)
	}
	wantFixedArgs(t, "anthropic stream", args)
}

func TestForcedToolCallGemini(t *testing.T) {
	_, ts := newMock(t, Options{})
	client := newGeminiClient(t, ts.URL, hdr(HeaderToolCall, forcedTool, HeaderChunks, "4"))

	resp, err := client.Models.GenerateContent(context.Background(), "gemini-2.5-flash", genai.Text("weather in paris"), nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := resp.FunctionCalls()
	if len(calls) != 1 || calls[0].Name != forcedTool || resp.Candidates[0].FinishReason != genai.FinishReasonStop ||
		resp.UsageMetadata.CandidatesTokenCount != 4 || resp.UsageMetadata.PromptTokenCount != 3 {
		t.Fatalf("JSON reply: calls %+v, candidate %+v", calls, resp.Candidates[0])
	}
	wantFixedArgs(t, "gemini", calls[0].Args)

	var streamed []*genai.FunctionCall
	var chunks int
	var last *genai.GenerateContentResponse
	for r, err := range client.Models.GenerateContentStream(context.Background(), "gemini-2.5-flash", genai.Text("weather in paris"), nil) {
		if err != nil {
			t.Fatal(err)
		}
		chunks++
		streamed = append(streamed, r.FunctionCalls()...)
		last = r
	}
	if chunks != 1 || len(streamed) != 1 || streamed[0].Name != forcedTool {
		t.Fatalf("stream: %d chunks, calls %+v", chunks, streamed)
	}
	wantFixedArgs(t, "gemini stream", streamed[0].Args)
	if last.Candidates[0].FinishReason != genai.FinishReasonStop || last.UsageMetadata.CandidatesTokenCount != 4 {
		t.Errorf("last chunk: candidate %+v usage %+v", last.Candidates[0], last.UsageMetadata)
	}
}

// TestForcedToolCallLayers checks the knob's layers and bounds on the raw
// wire: a scenario sets it, the header "none" undoes it, a forced name beats
// the tools a request declares, and a malformed name is refused.
func TestForcedToolCallLayers(t *testing.T) {
	srv, ts := newMock(t, Options{})
	post := func(path, body string, h http.Header) (int, gjson.Result) {
		t.Helper()
		resp, got, err := call(t, nil, http.MethodPost, ts.URL+path, h, body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, gjson.ParseBytes(got)
	}
	const msgBody = `{"model":"claude","max_tokens":9,"messages":[{"role":"user","content":"a b"}]}`
	if got := put(t, ts.URL+"/__scenarios/tooly", `{"tool_call":"lookup"}`); got != http.StatusNoContent {
		t.Fatalf("PUT: %d", got)
	}
	if st, _ := srv.scenarios.get("tooly"); st.ToolCall == nil || *st.ToolCall != "lookup" {
		t.Fatalf("stored scenario = %+v", st)
	}

	status, r := post("/v1/messages", msgBody, hdr("X-Api-Key", "k", HeaderScenario, "tooly"))
	if status != 200 || r.Get("content.0.type").String() != "tool_use" || r.Get("content.0.name").String() != "lookup" ||
		r.Get("content.0.input").Raw != FixedToolArguments || r.Get("stop_reason").String() != "tool_use" {
		t.Errorf("scenario: %d %s", status, r.Raw)
	}
	status, r = post("/v1/messages", msgBody, hdr("X-Api-Key", "k", HeaderScenario, "tooly", HeaderToolCall, ToolCallNone))
	if status != 200 || r.Get("content.0.type").String() != "text" || r.Get("stop_reason").String() != "end_turn" {
		t.Errorf("header none over scenario: %d %s", status, r.Raw)
	}

	// A request declaring tools gets the forced call, not its own tool.
	status, r = post("/v1/chat/completions",
		`{"model":"m","messages":[{"role":"user","content":"a"}],"tools":[{"type":"function","function":{"name":"declared"}}]}`,
		hdr("Authorization", "Bearer k", HeaderToolCall, "forced"))
	if call := r.Get("choices.0.message.tool_calls.0.function"); status != 200 || call.Get("name").String() != "forced" ||
		call.Get("arguments").String() != FixedToolArguments || r.Get("choices.0.finish_reason").String() != "tool_calls" {
		t.Errorf("forced over declared: %d %s", status, r.Raw)
	}
	// Legacy completions cannot call tools: still text.
	status, r = post("/v1/completions", `{"model":"m","prompt":"a"}`, hdr("Authorization", "Bearer k", HeaderToolCall, "forced"))
	if status != 200 || r.Get("choices.0.text").String() != ReplyText(DefaultChunks) {
		t.Errorf("completions: %d %s", status, r.Raw)
	}

	status, r = post("/v1/messages", msgBody, hdr("X-Api-Key", "k", HeaderToolCall, "no spaces"))
	if status != 400 || r.Get("error.type").String() == "" {
		t.Errorf("bad header name: %d %s", status, r.Raw)
	}
	for _, bad := range []string{`{"tool_call":"a b"}`, `{"tool_call":"` + strings.Repeat("x", 129) + `"}`, `{"tool_call":7}`} {
		if got := put(t, ts.URL+"/__scenarios/x", bad); got != 400 {
			t.Errorf("PUT %s: %d, want 400", bad, got)
		}
	}
}

func put(t *testing.T, url, body string) int {
	t.Helper()
	resp, _, err := call(t, nil, http.MethodPut, url, nil, body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}

// Package wiresdk checks that what the wire adapters' encoders write is
// accepted by the official SDKs: each test serves an encoder's output from
// an httptest server and reads it with the vendor's Go client.
package wiresdk

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire/openairesponses"
)

// toolTurn is the canonical stream of a translated upstream: reasoning,
// text, two tool calls whose argument deltas interleave, the finish before
// the usage.
var toolTurn = []wire.Event{
	{Kind: wire.EventStart, ID: "chatcmpl-9", Model: "upstream-model"},
	{Kind: wire.EventReasoning, Text: "Two cities."},
	{Kind: wire.EventText, Text: "Checking "},
	{Kind: wire.EventText, Text: "both."},
	{Kind: wire.EventToolCall, Index: 0, ToolCallID: "call_1", ToolName: "get_weather"},
	{Kind: wire.EventToolArgs, Index: 0, Text: `{"city":`},
	{Kind: wire.EventToolCall, Index: 1, ToolCallID: "call_2", ToolName: "get_weather"},
	{Kind: wire.EventToolArgs, Index: 1, Text: `{"city":"Rome"}`},
	{Kind: wire.EventToolArgs, Index: 0, Text: `"Paris"}`},
	{Kind: wire.EventFinish, Finish: wire.FinishToolCalls},
	{Kind: wire.EventUsage, Usage: wire.Usage{Prompt: 100, Completion: 30, Cached: 40, Reasoning: 10}},
}

// serveResponses answers POST /v1/responses with body (SSE when stream).
func serveResponses(t *testing.T, body []byte, stream bool) *openai.Client {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/responses" {
			http.NotFound(w, r)
			return
		}
		if stream {
			w.Header().Set("Content-Type", "text/event-stream")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(ts.Close)
	c := openai.NewClient(option.WithBaseURL(ts.URL+"/v1/"), option.WithAPIKey("sk-test"), option.WithMaxRetries(0))
	return &c
}

var params = responses.ResponseNewParams{
	Model: "my-alias",
	Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("weather in Paris and Rome?")},
}

func TestOpenAIResponsesStreamSDK(t *testing.T) {
	req := &wire.Request{Model: "my-alias", Stream: true}
	enc := openairesponses.Adapter{}.NewStreamEncoder(req)
	var body []byte
	for _, ev := range toolTurn {
		body = enc.Encode(body, ev)
	}
	body = enc.End(body)
	client := serveResponses(t, body, true)

	stream := client.Responses.NewStreaming(context.Background(), params)
	var (
		seq              int64
		text, reasoning  string
		args             = map[string]string{} // item id → arguments from deltas
		done             = map[string]string{} // call id → arguments of output_item.done
		completed        responses.Response
		sawCompleted     bool
		addedCalls       []string
		argumentsDoneCnt int
	)
	for stream.Next() {
		ev := stream.Current()
		if ev.SequenceNumber != seq {
			t.Errorf("%s has sequence_number %d, want %d", ev.Type, ev.SequenceNumber, seq)
		}
		seq++
		switch ev.Type {
		case "response.output_text.delta":
			text += ev.AsResponseOutputTextDelta().Delta
		case "response.reasoning_summary_text.delta":
			reasoning += ev.AsResponseReasoningSummaryTextDelta().Delta
		case "response.output_item.added":
			if it := ev.AsResponseOutputItemAdded().Item; it.Type == "function_call" {
				addedCalls = append(addedCalls, it.AsFunctionCall().CallID)
			}
		case "response.function_call_arguments.delta":
			d := ev.AsResponseFunctionCallArgumentsDelta()
			args[d.ItemID] += d.Delta
		case "response.function_call_arguments.done":
			d := ev.AsResponseFunctionCallArgumentsDone()
			if args[d.ItemID] != d.Arguments {
				t.Errorf("item %s: deltas %q, done %q", d.ItemID, args[d.ItemID], d.Arguments)
			}
			argumentsDoneCnt++
		case "response.output_item.done":
			if it := ev.AsResponseOutputItemDone().Item; it.Type == "function_call" {
				fc := it.AsFunctionCall()
				done[fc.CallID] = fc.Arguments
			}
		case "response.completed":
			completed, sawCompleted = ev.AsResponseCompleted().Response, true
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if text != "Checking both." || reasoning != "Two cities." {
		t.Errorf("text %q reasoning %q", text, reasoning)
	}
	if len(addedCalls) != 2 || addedCalls[0] != "call_1" || addedCalls[1] != "call_2" || argumentsDoneCnt != 2 {
		t.Errorf("calls added %q, arguments done %d", addedCalls, argumentsDoneCnt)
	}
	if done["call_1"] != `{"city":"Paris"}` || done["call_2"] != `{"city":"Rome"}` {
		t.Errorf("done arguments %v", done)
	}
	if !sawCompleted {
		t.Fatal("no response.completed")
	}
	u := completed.Usage
	if completed.Status != responses.ResponseStatusCompleted || completed.Model != "my-alias" || completed.OutputText() != "Checking both." ||
		u.InputTokens != 100 || u.OutputTokens != 30 || u.TotalTokens != 130 ||
		u.InputTokensDetails.CachedTokens != 40 || u.OutputTokensDetails.ReasoningTokens != 10 {
		t.Errorf("completed response %s", completed.RawJSON())
	}
	if n := len(completed.Output); n != 4 || completed.Output[3].AsFunctionCall().Arguments != `{"city":"Rome"}` {
		t.Errorf("completed output %d items", n)
	}
}

func TestOpenAIResponsesStreamIncompleteSDK(t *testing.T) {
	enc := openairesponses.Adapter{}.NewStreamEncoder(&wire.Request{Model: "m", Stream: true, MaxOutputTokens: 2})
	body := enc.Encode(nil, wire.Event{Kind: wire.EventStart, ID: "x"})
	body = enc.Encode(body, wire.Event{Kind: wire.EventText, Text: "Once upon"})
	body = enc.Encode(body, wire.Event{Kind: wire.EventFinish, Finish: wire.FinishLength})
	body = enc.Encode(body, wire.Event{Kind: wire.EventUsage, Usage: wire.Usage{Prompt: 5, Completion: 2}})
	body = enc.End(body)
	stream := serveResponses(t, body, true).Responses.NewStreaming(context.Background(), params)
	var last responses.ResponseStreamEventUnion
	for stream.Next() {
		last = stream.Current()
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	r := last.AsResponseIncomplete().Response
	if last.Type != "response.incomplete" || r.Status != responses.ResponseStatusIncomplete ||
		r.IncompleteDetails.Reason != "max_output_tokens" || r.OutputText() != "Once upon" || r.Usage.OutputTokens != 2 {
		t.Errorf("last event %s", last.RawJSON())
	}
}

func TestOpenAIResponsesAnswerSDK(t *testing.T) {
	resp := &wire.Response{ID: "msg_01", Model: "claude-x", Finish: wire.FinishToolCalls, HasUsage: true,
		Usage: wire.Usage{Prompt: 50, Completion: 20, Cached: 10, CacheWrite: 5, Reasoning: 8},
		Parts: []wire.Part{
			{Kind: wire.PartReasoning, Text: "Need weather."},
			{Kind: wire.PartText, Text: "Checking."},
			{Kind: wire.PartToolCall, ToolCall: &wire.ToolCall{ID: "toolu_1", Name: "get_weather", Arguments: `{"city":"Paris"}`}},
		}}
	body, err := openairesponses.Adapter{}.EncodeResponse(resp, &wire.Request{Model: "my-alias"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := serveResponses(t, body, false).Responses.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "resp_msg_01" || got.Status != responses.ResponseStatusCompleted || got.OutputText() != "Checking." || len(got.Output) != 3 {
		t.Fatalf("answer %s", got.RawJSON())
	}
	if fc := got.Output[2].AsFunctionCall(); fc.CallID != "toolu_1" || fc.Name != "get_weather" || fc.Arguments != `{"city":"Paris"}` {
		t.Errorf("function call %+v", fc)
	}
	if rs := got.Output[0].AsReasoning(); len(rs.Summary) != 1 || rs.Summary[0].Text != "Need weather." {
		t.Errorf("reasoning %+v", rs)
	}
	u := got.Usage
	if u.InputTokens != 50 || u.OutputTokens != 20 || u.TotalTokens != 70 || u.InputTokensDetails.CachedTokens != 10 ||
		u.OutputTokensDetails.ReasoningTokens != 8 {
		t.Errorf("usage %s", u.RawJSON())
	}
}

// TestOpenAIResponsesStreamErrorSDK: an upstream failure mid-stream reaches
// the client as Responses' own error event, after the text so far.
func TestOpenAIResponsesStreamErrorSDK(t *testing.T) {
	enc := openairesponses.Adapter{}.NewStreamEncoder(&wire.Request{Model: "m", Stream: true})
	body := enc.Encode(nil, wire.Event{Kind: wire.EventText, Text: "Par"})
	body = enc.Encode(body, wire.Event{Kind: wire.EventError, Text: "upstream stream ended unexpectedly"})
	body = enc.End(body)
	stream := serveResponses(t, body, true).Responses.NewStreaming(context.Background(), params)
	var types []string
	var last responses.ResponseStreamEventUnion
	for stream.Next() {
		last = stream.Current()
		types = append(types, last.Type)
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if e := last.AsError(); last.Type != "error" || e.Message != "upstream stream ended unexpectedly" || e.Code != "UPSTREAM_ERROR" {
		t.Errorf("events %q, last %s", types, last.RawJSON())
	}
}

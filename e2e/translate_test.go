package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"
	"github.com/tidwall/gjson"
	"google.golang.org/genai"
)

// Protocol translation (issue 11): every official SDK reaches a model that
// only a provider of another API family lists, streamed and not, for text
// and for a tool call, and billing settles exactly the upstream's usage.

// The families a client or an upstream speaks.
const (
	xlOpenAI    = "openai"
	xlAnthropic = "anthropic"
	xlGemini    = "gemini"
)

// xlModels is the one model each upstream family's provider lists; no
// other provider lists it, so a client of another family is served only
// by translation.
var xlModels = map[string]string{
	xlOpenAI:    "gpt-4o",
	xlAnthropic: "claude-sonnet-4-5",
	xlGemini:    "gemini-2.5-flash",
}

// xlPassthroughModel is listed only by an Anthropic provider that opted out
// of translation.
const xlPassthroughModel = "claude-opus-4-1"

// The tool every tool-call case declares, and what the mock is told to
// call it with: mock-upstream's forced call (scenario tool_call) always
// sends these arguments.
const (
	xlTool     = "get_weather"
	xlToolArgs = `{"city":"Paris","unit":"celsius"}`
	xlPrompt   = "what is the weather in paris"
	xlScenario = "xlate"
)

// xlMockUsage is what the mock reports for every call (X-Mock-Usage via the
// scenario): each family writes it in its own fields, see upstreamUsage.
var xlMockUsage = xlUsage{prompt: 11, completion: 7, cached: 3, write: 2}

// xlToolSchema is the JSON schema of the tool's parameters.
var xlToolSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"city": map[string]any{"type": "string"},
		"unit": map[string]any{"type": "string", "enum": []string{"celsius", "fahrenheit"}},
	},
	"required": []string{"city"},
}

// xlUsage is a token count in the gateway's canonical sense: prompt holds
// cached and cache-write tokens.
type xlUsage struct{ prompt, completion, cached, write int64 }

// upstreamUsage is the canonical usage of the mock's answer as family
// writes it: Anthropic's input_tokens exclude the cache read and write
// counts it reports beside them; Gemini has no cache-write field.
func upstreamUsage(family string, u xlUsage) xlUsage {
	switch family {
	case xlAnthropic:
		u.prompt += u.cached + u.write
	case xlGemini:
		u.write = 0
	}
	return u
}

// seenUsage is what a client of family can read of canonical usage u: only
// the Anthropic format has a cache-write count.
func seenUsage(client string, u xlUsage) xlUsage {
	if client != xlAnthropic {
		u.write = 0
	}
	return u
}

// xlCall is one case of the table.
type xlCall struct {
	model        string
	stream, tool bool
	// id is the client's X-Request-Id.
	id string
}

// xlSeen is what the SDK parsed from the gateway's answer.
type xlSeen struct {
	text               string
	textDeltas         int
	toolName, toolArgs string
	argDeltas          int
	finish             string
	usage              xlUsage
	header             http.Header
}

// xlClient drives one SDK API.
type xlClient struct {
	name   string
	family string
	call   func(t *testing.T, c xlCall) (xlSeen, error)
	// finishText and finishTool are the finish reasons the SDK must see.
	finishText, finishTool string
}

func TestSDKTranslation(t *testing.T) {
	s := startStack(t)
	tn := s.xlSetup()
	ctx := context.Background()
	clients := xlClients(t, ctx, s, tn)

	for _, cl := range clients {
		for _, family := range []string{xlOpenAI, xlAnthropic, xlGemini} {
			if family == cl.family {
				continue
			}
			for _, stream := range []bool{false, true} {
				for _, tool := range []bool{false, true} {
					name := fmt.Sprintf("%s to %s/%s/%s", cl.name, family,
						map[bool]string{false: "plain", true: "stream"}[stream], map[bool]string{false: "text", true: "tool"}[tool])
					t.Run(name, func(t *testing.T) {
						s.xlCase(t, tn, cl, family, stream, tool)
					})
				}
			}
		}
	}

	t.Run("passthrough_only provider serves its own family only", func(t *testing.T) {
		s.xlPassthroughOnly(t, tn, clients)
	})

	t.Run("ledger sum equals balance", func(t *testing.T) {
		s.settled(tn)
		if sum, balance := s.xlLedgerSum(tn.userID), s.xlBalance(tn.userID); sum != balance {
			t.Errorf("balance %d != sum of ledger entries %d", balance, sum)
		}
	})
}

// xlCase runs one client × upstream family × mode and checks the content,
// the finish reason, the usage the SDK saw, what reached upstream and the
// debit.
func (s *stack) xlCase(t *testing.T, tn tenant, cl xlClient, family string, stream, tool bool) {
	scenario := map[string]any{"usage": map[string]int64{"prompt": xlMockUsage.prompt,
		"completion": xlMockUsage.completion, "cached": xlMockUsage.cached, "cache_write": xlMockUsage.write}}
	if tool {
		scenario["tool_call"] = xlTool
	}
	s.admin(http.MethodPut, s.mock+"/__scenarios/"+xlScenario, scenario, nil, http.StatusNoContent)
	s.admin(http.MethodDelete, s.mock+"/__requests", nil, nil, http.StatusNoContent)

	c := xlCall{model: xlModels[family], stream: stream, tool: tool, id: newID()}
	got, err := cl.call(t, c)
	if err != nil {
		t.Fatal(err)
	}

	if tool {
		if got.toolName != xlTool || !sameJSON(got.toolArgs, xlToolArgs) || got.text != "" {
			t.Errorf("tool call %s(%s), text %q; want %s(%s)", got.toolName, got.toolArgs, got.text, xlTool, xlToolArgs)
		}
		if got.finish != cl.finishTool {
			t.Errorf("finish %q, want %q", got.finish, cl.finishTool)
		}
		// The mock streams a call's arguments in one piece per chunk, and
		// each piece must reach the client as a delta of its own; Gemini
		// has no argument deltas, so a call it sends or receives is whole.
		wantPieces := chunks
		if family == xlGemini || cl.family == xlGemini {
			wantPieces = 1
		}
		if stream && got.argDeltas != wantPieces {
			t.Errorf("tool arguments in %d deltas, want %d", got.argDeltas, wantPieces)
		}
	} else {
		if got.text != replyText(chunks) || got.toolName != "" {
			t.Errorf("text %q, tool %q; want text %q", got.text, got.toolName, replyText(chunks))
		}
		if got.finish != cl.finishText {
			t.Errorf("finish %q, want %q", got.finish, cl.finishText)
		}
		if stream && got.textDeltas != chunks {
			t.Errorf("text in %d deltas, want %d", got.textDeltas, chunks)
		}
	}

	served := upstreamUsage(family, xlMockUsage)
	if want := seenUsage(cl.family, served); got.usage != want {
		t.Errorf("usage seen %+v, want %+v", got.usage, want)
	}
	s.xlUpstreamRequest(t, family, c, tn.key)
	if debit, want := s.debit(tn.userID, gatewayID(t, got.header, c.id)), -cost(served.prompt, served.completion, served.cached, served.write); debit != want {
		t.Errorf("ledger debit %d, want %d (upstream usage %+v)", debit, want, served)
	}
}

// xlUpstreamRequest checks that the one request the mock received is in
// the upstream family's own format, for the right model, with the tool
// declared in that format, authenticated with the provider's key in that
// family's header, and that neither the client's key nor another family's
// headers went upstream.
func (s *stack) xlUpstreamRequest(t *testing.T, family string, c xlCall, clientKey string) {
	t.Helper()
	var page struct {
		Items []struct {
			Path    string      `json:"path"`
			URI     string      `json:"uri"`
			Model   string      `json:"model"`
			Body    string      `json:"body"`
			Headers http.Header `json:"headers"`
		} `json:"items"`
	}
	s.admin(http.MethodGet, s.mock+"/__requests", nil, &page, http.StatusOK)
	if len(page.Items) != 1 {
		t.Errorf("mock received %d requests, want 1: %+v", len(page.Items), page.Items)
		return
	}
	r := page.Items[0]
	var path, toolPath, authHeader, auth string
	switch family {
	case xlOpenAI:
		path, toolPath = "/v1/chat/completions", "tools.0.function.name"
		authHeader, auth = "Authorization", "Bearer sk-mock-openai"
	case xlAnthropic:
		path, toolPath = "/v1/messages", "tools.0.name"
		authHeader, auth = "X-Api-Key", "sk-mock-anthropic"
	case xlGemini:
		path, toolPath = "/v1beta/models/"+c.model+":generateContent", "tools.0.functionDeclarations.0.name"
		authHeader, auth = "X-Goog-Api-Key", "mock-gemini-key"
		if c.stream {
			path = "/v1beta/models/" + c.model + ":streamGenerateContent"
		}
	}
	if r.Path != path || r.Model != c.model {
		t.Errorf("upstream got %s for model %q, want %s for %q", r.Path, r.Model, path, c.model)
	}
	if got := r.Headers.Get(authHeader); got != auth {
		t.Errorf("upstream %s %q, want %q", authHeader, got, auth)
	}
	if family != xlAnthropic && (r.Headers.Get("Anthropic-Version") != "" || r.Headers.Get("Anthropic-Beta") != "") {
		t.Errorf("Anthropic headers reached a %s upstream: %v", family, r.Headers)
	}
	for name, vals := range r.Headers {
		for _, v := range vals {
			if strings.Contains(v, clientKey) {
				t.Errorf("the client's key reached upstream in %s", name)
			}
		}
	}
	if strings.Contains(r.URI, clientKey) || strings.Contains(r.Body, clientKey) {
		t.Errorf("the client's key reached upstream: %s %s", r.URI, r.Body)
	}
	body := gjson.Parse(r.Body)
	if family != xlGemini && body.Get("stream").Bool() != c.stream {
		t.Errorf("upstream body stream=%v, want %v: %s", body.Get("stream").Bool(), c.stream, r.Body)
	}
	if c.tool && body.Get(toolPath).String() != xlTool {
		t.Errorf("upstream body does not declare %s at %s: %s", xlTool, toolPath, r.Body)
	}
}

// xlClients builds the four SDK drivers against the gateway.
func xlClients(t *testing.T, ctx context.Context, s *stack, tn tenant) []xlClient {
	oa := openai.NewClient(option.WithBaseURL(s.gateway+"/v1/"), option.WithAPIKey(tn.key), option.WithMaxRetries(0))
	an := anthropic.NewClient(aoption.WithoutEnvironmentDefaults(), aoption.WithBaseURL(s.gateway),
		aoption.WithAPIKey(tn.key), aoption.WithMaxRetries(0))
	ge, err := genai.NewClient(ctx, &genai.ClientConfig{APIKey: tn.key, Backend: genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: s.gateway}})
	if err != nil {
		t.Fatal(err)
	}
	return []xlClient{
		{name: "openai chat", family: xlOpenAI, finishText: "stop", finishTool: "tool_calls",
			call: func(t *testing.T, c xlCall) (xlSeen, error) { return xlChat(t, ctx, oa, c) }},
		{name: "openai responses", family: xlOpenAI, finishText: "completed", finishTool: "completed",
			call: func(t *testing.T, c xlCall) (xlSeen, error) { return xlResponses(t, ctx, oa, c) }},
		{name: "anthropic messages", family: xlAnthropic, finishText: "end_turn", finishTool: "tool_use",
			call: func(t *testing.T, c xlCall) (xlSeen, error) { return xlMessages(t, ctx, an, c) }},
		{name: "gemini generateContent", family: xlGemini, finishText: "STOP", finishTool: "STOP",
			call: func(t *testing.T, c xlCall) (xlSeen, error) { return xlGenerate(t, ctx, ge, c) }},
	}
}

func xlChat(t *testing.T, ctx context.Context, oa openai.Client, c xlCall) (xlSeen, error) {
	t.Helper()
	params := openai.ChatCompletionNewParams{Model: c.model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(xlPrompt)}}
	if c.tool {
		params.Tools = []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(
			shared.FunctionDefinitionParam{Name: xlTool, Parameters: shared.FunctionParameters(xlToolSchema)})}
	}
	var hr *http.Response
	opts := []option.RequestOption{option.WithHeader("X-Request-Id", c.id), option.WithResponseInto(&hr)}
	var seen xlSeen
	var msg openai.ChatCompletionMessage
	var u openai.CompletionUsage
	if c.stream {
		params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		stream := oa.Chat.Completions.NewStreaming(ctx, params, opts...)
		var acc openai.ChatCompletionAccumulator
		for stream.Next() {
			ch := stream.Current()
			acc.AddChunk(ch)
			if len(ch.Choices) == 0 {
				continue
			}
			if ch.Choices[0].Delta.Content != "" {
				seen.textDeltas++
			}
			for _, tc := range ch.Choices[0].Delta.ToolCalls {
				if tc.Function.Arguments != "" {
					seen.argDeltas++
				}
			}
		}
		if err := stream.Err(); err != nil {
			return seen, err
		}
		if len(acc.Choices) != 1 {
			t.Fatalf("%d choices", len(acc.Choices))
		}
		msg, seen.finish, u = acc.Choices[0].Message, acc.Choices[0].FinishReason, acc.Usage
	} else {
		resp, err := oa.Chat.Completions.New(ctx, params, opts...)
		if err != nil {
			return seen, err
		}
		if len(resp.Choices) != 1 {
			t.Fatalf("%d choices: %s", len(resp.Choices), resp.RawJSON())
		}
		msg, seen.finish, u = resp.Choices[0].Message, resp.Choices[0].FinishReason, resp.Usage
	}
	seen.text = msg.Content
	if len(msg.ToolCalls) > 1 {
		t.Errorf("%d tool calls", len(msg.ToolCalls))
	}
	if len(msg.ToolCalls) > 0 {
		seen.toolName, seen.toolArgs = msg.ToolCalls[0].Function.Name, msg.ToolCalls[0].Function.Arguments
	}
	seen.usage = xlUsage{prompt: u.PromptTokens, completion: u.CompletionTokens, cached: u.PromptTokensDetails.CachedTokens}
	seen.header = hr.Header
	return seen, nil
}

func xlResponses(t *testing.T, ctx context.Context, oa openai.Client, c xlCall) (xlSeen, error) {
	t.Helper()
	params := responses.ResponseNewParams{Model: c.model,
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(xlPrompt)}}
	if c.tool {
		params.Tools = []responses.ToolUnionParam{{OfFunction: &responses.FunctionToolParam{Name: xlTool,
			Parameters: xlToolSchema, Strict: openai.Bool(false)}}}
	}
	var hr *http.Response
	opts := []option.RequestOption{option.WithHeader("X-Request-Id", c.id), option.WithResponseInto(&hr)}
	var seen xlSeen
	var resp *responses.Response
	if c.stream {
		stream := oa.Responses.NewStreaming(ctx, params, opts...)
		var deltas strings.Builder
		for stream.Next() {
			ev := stream.Current()
			switch ev.Type {
			case "response.output_text.delta":
				seen.textDeltas++
				deltas.WriteString(ev.Delta)
			case "response.function_call_arguments.delta":
				if ev.Delta != "" {
					seen.argDeltas++
				}
			case "response.completed":
				r := ev.Response
				resp = &r
			}
		}
		if err := stream.Err(); err != nil {
			return seen, err
		}
		if resp == nil {
			t.Fatal("no response.completed event")
		}
		if deltas.String() != resp.OutputText() {
			t.Errorf("text deltas %q, completed response text %q", deltas.String(), resp.OutputText())
		}
	} else {
		var err error
		if resp, err = oa.Responses.New(ctx, params, opts...); err != nil {
			return seen, err
		}
	}
	seen.text, seen.finish = resp.OutputText(), string(resp.Status)
	for _, item := range resp.Output {
		if item.Type == "function_call" {
			if seen.toolName != "" {
				t.Errorf("more than one function call: %s", resp.RawJSON())
			}
			seen.toolName, seen.toolArgs = item.Name, item.Arguments.OfString
		}
	}
	seen.usage = xlUsage{prompt: resp.Usage.InputTokens, completion: resp.Usage.OutputTokens,
		cached: resp.Usage.InputTokensDetails.CachedTokens}
	seen.header = hr.Header
	return seen, nil
}

func xlMessages(t *testing.T, ctx context.Context, an anthropic.Client, c xlCall) (xlSeen, error) {
	t.Helper()
	params := anthropic.MessageNewParams{Model: anthropic.Model(c.model), MaxTokens: 256,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(xlPrompt))}}
	if c.tool {
		params.Tools = []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{Name: xlTool,
			InputSchema: anthropic.ToolInputSchemaParam{Properties: xlToolSchema["properties"], Required: []string{"city"}}}}}
	}
	var hr *http.Response
	opts := []aoption.RequestOption{aoption.WithHeader("X-Request-Id", c.id), aoption.WithResponseInto(&hr)}
	var seen xlSeen
	var msg anthropic.Message
	if c.stream {
		stream := an.Messages.NewStreaming(ctx, params, opts...)
		for stream.Next() {
			ev := stream.Current()
			if ev.Type == "content_block_delta" {
				switch ev.Delta.Type {
				case "text_delta":
					seen.textDeltas++
				case "input_json_delta":
					if ev.Delta.PartialJSON != "" {
						seen.argDeltas++
					}
				}
			}
			if err := msg.Accumulate(ev); err != nil {
				t.Fatal(err)
			}
		}
		if err := stream.Err(); err != nil {
			return seen, err
		}
	} else {
		resp, err := an.Messages.New(ctx, params, opts...)
		if err != nil {
			return seen, err
		}
		msg = *resp
	}
	for _, b := range msg.Content {
		switch b.Type {
		case "text":
			seen.text += b.Text
		case "tool_use":
			if seen.toolName != "" {
				t.Errorf("more than one tool use: %s", msg.RawJSON())
			}
			seen.toolName, seen.toolArgs = b.Name, string(b.Input)
		default:
			t.Errorf("unexpected content block %s", b.RawJSON())
		}
	}
	seen.finish = string(msg.StopReason)
	u := msg.Usage
	seen.usage = xlUsage{prompt: u.InputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens,
		completion: u.OutputTokens, cached: u.CacheReadInputTokens, write: u.CacheCreationInputTokens}
	seen.header = hr.Header
	return seen, nil
}

func xlGenerate(t *testing.T, ctx context.Context, ge *genai.Client, c xlCall) (xlSeen, error) {
	t.Helper()
	cfg := &genai.GenerateContentConfig{HTTPOptions: &genai.HTTPOptions{Headers: http.Header{"X-Request-Id": {c.id}}}}
	if c.tool {
		cfg.Tools = []*genai.Tool{{FunctionDeclarations: []*genai.FunctionDeclaration{{Name: xlTool,
			Parameters: &genai.Schema{Type: genai.TypeObject, Required: []string{"city"}, Properties: map[string]*genai.Schema{
				"city": {Type: genai.TypeString},
				"unit": {Type: genai.TypeString, Enum: []string{"celsius", "fahrenheit"}},
			}}}}}}
	}
	var seen xlSeen
	var last *genai.GenerateContentResponseUsageMetadata
	take := func(resp *genai.GenerateContentResponse) {
		if len(resp.Candidates) > 1 {
			t.Errorf("%d candidates", len(resp.Candidates))
		}
		if len(resp.Candidates) > 0 {
			cand := resp.Candidates[0]
			if cand.FinishReason != "" {
				seen.finish = string(cand.FinishReason)
			}
			if cand.Content != nil {
				for _, p := range cand.Content.Parts {
					if p.Text != "" {
						seen.text += p.Text
						seen.textDeltas++
					}
					if p.FunctionCall != nil {
						if seen.toolName != "" {
							t.Errorf("more than one function call")
						}
						args, _ := json.Marshal(p.FunctionCall.Args)
						seen.toolName, seen.toolArgs = p.FunctionCall.Name, string(args)
						seen.argDeltas++
					}
				}
			}
		}
		if resp.UsageMetadata != nil {
			last = resp.UsageMetadata
		}
		if resp.SDKHTTPResponse != nil {
			seen.header = resp.SDKHTTPResponse.Headers
		}
	}
	if c.stream {
		for resp, err := range ge.Models.GenerateContentStream(ctx, c.model, genai.Text(xlPrompt), cfg) {
			if err != nil {
				return seen, err
			}
			take(resp)
		}
	} else {
		resp, err := ge.Models.GenerateContent(ctx, c.model, genai.Text(xlPrompt), cfg)
		if err != nil {
			return seen, err
		}
		take(resp)
	}
	if last == nil {
		t.Fatal("no usageMetadata")
	}
	if seen.header == nil {
		t.Fatal("genai kept no HTTP response")
	}
	seen.usage = xlUsage{prompt: int64(last.PromptTokenCount), completion: int64(last.CandidatesTokenCount + last.ThoughtsTokenCount),
		cached: int64(last.CachedContentTokenCount)}
	return seen, nil
}

// xlPassthroughOnly adds an Anthropic provider opted out of translation and
// checks that only the Anthropic SDK reaches its model: every other
// client gets 404 MODEL_NOT_FOUND in its own error format, and nothing
// reaches upstream.
func (s *stack) xlPassthroughOnly(t *testing.T, tn tenant, clients []xlClient) {
	s.admin(http.MethodPost, s.provider+"/api/v1/providers", map[string]any{"name": "mock-anthropic-own",
		"type": "anthropic", "base_url": s.mock, "keys": []string{"sk-mock-anthropic"}, "models": []string{xlPassthroughModel},
		"headers": map[string]string{"X-Mock-Scenario": xlScenario}, "allow_private_network": true, "enabled": true,
		"weight": 1, "passthrough_only": true}, nil, http.StatusCreated)
	s.admin(http.MethodPut, s.mock+"/__scenarios/"+xlScenario, map[string]any{}, nil, http.StatusNoContent)
	// The Anthropic SDK is served by pass-through; once it is, the gateway
	// knows the provider.
	var anthropicClient xlClient
	for _, cl := range clients {
		if cl.family == xlAnthropic {
			anthropicClient = cl
		}
	}
	s.eventually("gateway lists "+xlPassthroughModel, func() bool {
		return xlListed(s.xlModelList(xlAnthropic, tn.key), xlAnthropic, xlPassthroughModel)
	})
	// The other families' lists do not offer what they cannot call.
	for _, family := range []string{xlOpenAI, xlGemini} {
		if list := s.xlModelList(family, tn.key); list == "" || xlListed(list, family, xlPassthroughModel) {
			t.Errorf("%s model list offers %s (or failed): %s", family, xlPassthroughModel, list)
		}
	}
	t.Run("anthropic messages", func(t *testing.T) {
		id := newID()
		got, err := anthropicClient.call(t, xlCall{model: xlPassthroughModel, id: id})
		if err != nil {
			t.Fatal(err)
		}
		if got.text != replyText(chunks) {
			t.Errorf("text %q", got.text)
		}
		s.debit(tn.userID, gatewayID(t, got.header, id))
	})
	s.admin(http.MethodDelete, s.mock+"/__requests", nil, nil, http.StatusNoContent)
	for _, cl := range clients {
		if cl.family == xlAnthropic {
			continue
		}
		t.Run(cl.name, func(t *testing.T) {
			_, err := cl.call(t, xlCall{model: xlPassthroughModel, id: newID()})
			if status, reason := xlErrorReason(err); status != http.StatusNotFound || reason != "MODEL_NOT_FOUND" {
				t.Errorf("status %d reason %q (%v), want 404 MODEL_NOT_FOUND", status, reason, err)
			}
		})
	}
	var page struct {
		Items []json.RawMessage `json:"items"`
	}
	s.admin(http.MethodGet, s.mock+"/__requests", nil, &page, http.StatusOK)
	if len(page.Items) != 0 {
		t.Errorf("a refused call reached upstream: %s", page.Items)
	}
}

// xlErrorReason reads the status and the stable reason of an SDK error
// from the error body in the SDK's own format (OpenAI error.code,
// Anthropic error.reason, Gemini details[].reason).
func xlErrorReason(err error) (int, string) {
	var oe *openai.Error
	if errors.As(err, &oe) {
		return oe.StatusCode, oe.Code
	}
	var ae *anthropic.Error
	if errors.As(err, &ae) {
		return ae.StatusCode, gjson.Get(ae.RawJSON(), "error.reason").String()
	}
	var ge genai.APIError
	if errors.As(err, &ge) {
		for _, d := range ge.Details {
			if r, ok := d["reason"].(string); ok {
				return ge.Code, r
			}
		}
		return ge.Code, ""
	}
	return 0, ""
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(a, b string) bool {
	var va, vb any
	return json.Unmarshal([]byte(a), &va) == nil && json.Unmarshal([]byte(b), &vb) == nil && reflect.DeepEqual(va, vb)
}

// xlSetup creates one provider per family on the mock, each listing only
// its family's model of xlModels and naming the xlate scenario, plus a
// user with a balance, a key and the test price.
func (s *stack) xlSetup() tenant {
	s.t.Helper()
	for _, p := range []map[string]any{
		{"name": "mock-openai", "type": "openai", "base_url": s.mock + "/v1", "keys": []string{"sk-mock-openai"}},
		{"name": "mock-anthropic", "type": "anthropic", "base_url": s.mock, "keys": []string{"sk-mock-anthropic"}},
		{"name": "mock-gemini", "type": "gemini", "base_url": s.mock, "keys": []string{"mock-gemini-key"}},
	} {
		p["models"] = []string{xlModels[p["type"].(string)]}
		p["headers"] = map[string]string{"X-Mock-Scenario": xlScenario}
		p["allow_private_network"], p["enabled"], p["weight"] = true, true, 1
		s.admin(http.MethodPost, s.provider+"/api/v1/providers", p, nil, http.StatusCreated)
	}
	s.admin(http.MethodPost, s.billing+"/api/v1/billing/prices", map[string]any{"model_pattern": "*",
		"input_micros_per_mtok": priceIn, "output_micros_per_mtok": priceOut,
		"cached_input_micros_per_mtok": priceCached, "cache_write_micros_per_mtok": priceWrite}, nil, http.StatusCreated)
	tn := s.edgeBodyUser("xlate", topup, 0)
	// Each family's own model list names its provider's model once the
	// gateway has seen that provider.
	for family, model := range xlModels {
		s.eventually("gateway lists "+model, func() bool { return xlListed(s.xlModelList(family, tn.key), family, model) })
	}
	return tn
}

// xlModelList is the gateway's model list in family's format ("" when
// it does not answer 200).
func (s *stack) xlModelList(family, key string) string {
	s.t.Helper()
	path := "/v1/models"
	if family == xlGemini {
		path = "/v1beta/models"
	}
	req, _ := http.NewRequest(http.MethodGet, s.gateway+path, nil)
	switch family {
	case xlOpenAI:
		req.Header.Set("Authorization", "Bearer "+key)
	case xlAnthropic:
		req.Header.Set("x-api-key", key)
		req.Header.Set("anthropic-version", "2023-06-01")
	case xlGemini:
		req.Header.Set("x-goog-api-key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return string(b)
}

// xlListed reports whether a model list in family's format names model.
func xlListed(list, family, model string) bool {
	if family == xlGemini {
		return gjson.Get(list, `models.#(name=="models/`+model+`")`).Exists()
	}
	return gjson.Get(list, `data.#(id=="`+model+`")`).Exists()
}

// xlLedgerSum is the sum of a user's ledger entries.
func (s *stack) xlLedgerSum(userID string) int64 {
	s.t.Helper()
	var page struct {
		Items []ledgerEntry `json:"items"`
	}
	s.admin(http.MethodGet, s.billing+"/api/v1/billing/users/"+userID+"/ledger?limit=200", nil, &page, http.StatusOK)
	var sum int64
	for _, e := range page.Items {
		sum += e.AmountMicros
	}
	return sum
}

// xlBalance is a user's balance.
func (s *stack) xlBalance(userID string) int64 {
	s.t.Helper()
	var me struct {
		BalanceMicros int64 `json:"balance_micros"`
	}
	s.admin(http.MethodGet, s.billing+"/api/v1/billing/users/"+userID, nil, &me, http.StatusOK)
	return me.BalanceMicros
}

package e2e

import (
	"context"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/oklog/ulid/v2"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"google.golang.org/genai"
)

// The mock answers with chunks "tok0 tok1 … tok4 " (5 by default) and
// counts the words of the prompt text as prompt tokens.
const chunks = 5

func replyText(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString("tok")
		b.WriteString(string(rune('0' + i)))
		b.WriteString(" ")
	}
	return b.String()
}

func newID() string { return ulid.MustNew(ulid.Now(), rand.Reader).String() }

// gatewayID is the request id the gateway gave a call (X-Request-Id of the
// answer); the client's own id (clientID) must come back only as
// X-Client-Request-Id, never as the id billing settles by.
func gatewayID(t *testing.T, h http.Header, clientID string) string {
	t.Helper()
	id := h.Get("X-Request-Id")
	if id == "" || id == clientID || h.Get("X-Client-Request-Id") != clientID {
		t.Fatalf("X-Request-Id %q, X-Client-Request-Id %q for client id %q", id, h.Get("X-Client-Request-Id"), clientID)
	}
	return id
}

// TestSDKsThroughGateway drives the gateway with the official SDKs and
// checks, for every call, the content, the usage, and the debit billing
// settled for that request (computed here from the price, not read back
// from billing's own pricing).
func TestSDKsThroughGateway(t *testing.T) {
	s := startStack(t)
	tn := s.setup()
	ctx := context.Background()

	oa := openai.NewClient(option.WithBaseURL(s.gateway+"/v1/"), option.WithAPIKey(tn.key), option.WithMaxRetries(0))
	an := anthropic.NewClient(aoption.WithoutEnvironmentDefaults(), aoption.WithBaseURL(s.gateway),
		aoption.WithAPIKey(tn.key), aoption.WithMaxRetries(0))
	ge, err := genai.NewClient(ctx, &genai.ClientConfig{APIKey: tn.key, Backend: genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: s.gateway}})
	if err != nil {
		t.Fatal(err)
	}
	// hr receives each call's HTTP answer (its X-Request-Id is the id
	// billing settles by); subtests run one after the other.
	var hr *http.Response
	// settled checks billing's ledger entry of id against the price.
	settled := func(t *testing.T, id string, prompt, completion int64) {
		t.Helper()
		if got, want := s.debit(tn.userID, id), -cost(prompt, completion, 0, 0); got != want {
			t.Errorf("ledger debit %d, want %d (prompt %d, completion %d)", got, want, prompt, completion)
		}
	}

	t.Run("openai chat", func(t *testing.T) {
		id := newID()
		resp, err := oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("one two three")}},
			option.WithHeader("X-Request-Id", id), option.WithResponseInto(&hr))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Choices[0].Message.Content != replyText(chunks) || resp.Usage.PromptTokens != 3 || resp.Usage.CompletionTokens != chunks {
			t.Fatalf("content %q usage %s", resp.Choices[0].Message.Content, resp.Usage.RawJSON())
		}
		settled(t, gatewayID(t, hr.Header, id), 3, chunks)
	})

	for _, includeUsage := range []bool{true, false} {
		name := map[bool]string{true: "openai chat stream with include_usage", false: "openai chat stream without include_usage"}[includeUsage]
		t.Run(name, func(t *testing.T) {
			id := newID()
			params := openai.ChatCompletionNewParams{Model: "gpt-4o",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("alpha beta")}}
			if includeUsage {
				params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			}
			stream := oa.Chat.Completions.NewStreaming(ctx, params, option.WithHeader("X-Request-Id", id), option.WithResponseInto(&hr))
			var acc openai.ChatCompletionAccumulator
			usageChunks, deltas := 0, 0
			for stream.Next() {
				c := stream.Current()
				acc.AddChunk(c)
				if len(c.Choices) == 0 {
					usageChunks++
				} else if c.Choices[0].Delta.Content != "" {
					deltas++
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if acc.Choices[0].Message.Content != replyText(chunks) || deltas != chunks {
				t.Fatalf("content %q in %d deltas", acc.Choices[0].Message.Content, deltas)
			}
			wantUsageChunks := 0
			if includeUsage {
				wantUsageChunks = 1
				if acc.Usage.PromptTokens != 2 || acc.Usage.CompletionTokens != chunks {
					t.Errorf("usage %+v", acc.Usage)
				}
			}
			if usageChunks != wantUsageChunks {
				t.Errorf("%d usage chunks, want %d", usageChunks, wantUsageChunks)
			}
			settled(t, gatewayID(t, hr.Header, id), 2, chunks) // billed from upstream usage either way
		})
	}

	t.Run("openai completions", func(t *testing.T) {
		id := newID()
		resp, err := oa.Completions.New(ctx, openai.CompletionNewParams{Model: "gpt-3.5-turbo-instruct",
			Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("say four words here")}},
			option.WithHeader("X-Request-Id", id), option.WithResponseInto(&hr))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Choices[0].Text != replyText(chunks) || resp.Usage.PromptTokens != 4 {
			t.Fatalf("text %q usage %s", resp.Choices[0].Text, resp.Usage.RawJSON())
		}
		settled(t, gatewayID(t, hr.Header, id), 4, chunks)
	})

	t.Run("openai embeddings", func(t *testing.T) {
		id := newID()
		resp, err := oa.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "text-embedding-3-small",
			Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("embed these")}},
			option.WithHeader("X-Request-Id", id), option.WithResponseInto(&hr))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Data) != 1 || len(resp.Data[0].Embedding) == 0 || resp.Usage.PromptTokens != 2 {
			t.Fatalf("embeddings %s", resp.RawJSON())
		}
		settled(t, gatewayID(t, hr.Header, id), 2, 0)
	})

	t.Run("anthropic messages stream with tool use", func(t *testing.T) {
		id := newID()
		params := anthropic.MessageNewParams{Model: "claude-sonnet-4-5", MaxTokens: 256,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("weather in paris"))},
			Tools: []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{Name: "get_weather",
				InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"city": map[string]any{"type": "string"}}}}}}}
		stream := an.Messages.NewStreaming(ctx, params, aoption.WithHeader("X-Request-Id", id), aoption.WithResponseInto(&hr))
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
		if len(msg.Content) != 1 || msg.Content[0].Type != "tool_use" || msg.Content[0].Name != "get_weather" ||
			msg.StopReason != "tool_use" || pieces != chunks || !strings.Contains(string(msg.Content[0].Input), "tok0") {
			t.Fatalf("message %s (%d pieces)", msg.RawJSON(), pieces)
		}
		if msg.Usage.OutputTokens != chunks || msg.Usage.InputTokens < 3 {
			t.Fatalf("usage %s", msg.Usage.RawJSON())
		}
		settled(t, gatewayID(t, hr.Header, id), msg.Usage.InputTokens, msg.Usage.OutputTokens)
	})

	var countID string
	t.Run("anthropic count tokens", func(t *testing.T) {
		clientID := newID()
		resp, err := an.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{Model: "claude-sonnet-4-5",
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("count these four words"))}},
			aoption.WithHeader("X-Request-Id", clientID), aoption.WithResponseInto(&hr))
		if err != nil {
			t.Fatal(err)
		}
		countID = gatewayID(t, hr.Header, clientID)
		if resp.InputTokens != 4 {
			t.Fatalf("count %s", resp.RawJSON())
		}
	})

	t.Run("gemini generateContent", func(t *testing.T) {
		id := newID()
		resp, err := ge.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("one two three"),
			&genai.GenerateContentConfig{HTTPOptions: &genai.HTTPOptions{Headers: http.Header{"X-Request-Id": {id}}}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Text() != replyText(chunks) || resp.UsageMetadata.PromptTokenCount != 3 || resp.UsageMetadata.CandidatesTokenCount != chunks {
			t.Fatalf("text %q usage %+v", resp.Text(), resp.UsageMetadata)
		}
		if resp.SDKHTTPResponse == nil {
			t.Fatal("genai kept no HTTP response")
		}
		settled(t, gatewayID(t, resp.SDKHTTPResponse.Headers, id), 3, chunks)
	})

	t.Run("gemini streamGenerateContent", func(t *testing.T) {
		id := newID()
		var text strings.Builder
		var last *genai.GenerateContentResponseUsageMetadata
		var hdr http.Header
		parts := 0
		for resp, err := range ge.Models.GenerateContentStream(ctx, "gemini-2.5-pro", genai.Text("alpha beta"),
			&genai.GenerateContentConfig{HTTPOptions: &genai.HTTPOptions{Headers: http.Header{"X-Request-Id": {id}}}}) {
			if err != nil {
				t.Fatal(err)
			}
			if tx := resp.Text(); tx != "" {
				text.WriteString(tx)
				parts++
			}
			if resp.UsageMetadata != nil {
				last = resp.UsageMetadata
			}
			if resp.SDKHTTPResponse != nil {
				hdr = resp.SDKHTTPResponse.Headers
			}
		}
		if text.String() != replyText(chunks) || parts != chunks || last == nil || last.CandidatesTokenCount != chunks || last.PromptTokenCount != 2 {
			t.Fatalf("text %q in %d parts, usage %+v", text.String(), parts, last)
		}
		settled(t, gatewayID(t, hdr, id), 2, chunks)
	})

	t.Run("gemini countTokens", func(t *testing.T) {
		resp, err := ge.Models.CountTokens(ctx, "gemini-2.5-flash", genai.Text("count these four words"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.TotalTokens != 4 {
			t.Fatalf("count %+v", resp)
		}
	})

	t.Run("count tokens are not billed", func(t *testing.T) {
		// Settlements are applied in order; once a later request is
		// settled, an entry for the count would have been too.
		id := newID()
		if _, err := oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")}},
			option.WithHeader("X-Request-Id", id), option.WithResponseInto(&hr)); err != nil {
			t.Fatal(err)
		}
		s.debit(tn.userID, gatewayID(t, hr.Header, id))
		var page struct {
			Items []ledgerEntry `json:"items"`
		}
		s.admin(http.MethodGet, s.billing+"/api/v1/billing/users/"+tn.userID+"/ledger?limit=200", nil, &page, http.StatusOK)
		var sum int64
		for _, e := range page.Items {
			if e.RequestID == countID {
				t.Errorf("count_tokens was billed: %+v", e)
			}
			sum += e.AmountMicros
		}
		var me struct {
			BalanceMicros int64 `json:"balance_micros"`
		}
		s.admin(http.MethodGet, s.billing+"/api/v1/billing/users/"+tn.userID, nil, &me, http.StatusOK)
		if me.BalanceMicros != sum {
			t.Errorf("balance %d != sum of ledger entries %d", me.BalanceMicros, sum)
		}
		// Every request's estimate was taken back out of the gateway's
		// lease when billing settled it, and the unused rest goes back
		// when the key is idle: nothing stays held.
		s.settled(tn)
	})
}

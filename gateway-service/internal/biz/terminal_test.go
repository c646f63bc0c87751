package biz

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"google.golang.org/genai"

	"github.com/lurus-switch/lurus-switch/lurus-common/golden"
)

// wordCounter counts one token per whitespace-separated word: the cut
// transcripts stream one word per chunk, so a test can say exactly where
// a stream must stop.
type wordCounter struct{ calls int }

func (c *wordCounter) Count(text []byte) int64 {
	c.calls++
	return int64(len(bytes.Fields(text)))
}

type cutCase struct {
	file        string
	ep          Endpoint
	array       bool
	clientUsage bool // OpenAI: the client asked include_usage
	from, to    string
}

var cutCases = []cutCase{
	{file: "openai_chat_stream.sse", ep: EndpointChatCompletions, clientUsage: true, from: "gpt-4o-2024-08-06", to: "my-alias"},
	{file: "openai_chat_stream.sse", ep: EndpointChatCompletions},
	{file: "openai_completions_stream.sse", ep: EndpointCompletions, clientUsage: true},
	{file: "openai_responses_stream.sse", ep: EndpointResponses},
	{file: "anthropic_messages_stream.sse", ep: EndpointMessages},
	{file: "gemini_stream.sse", ep: EndpointStreamGenerateContent},
	{file: "gemini_stream_array.json", ep: EndpointStreamGenerateContent, array: true},
	{file: "gemini_stream_counted.sse", ep: EndpointStreamGenerateContent},
}

func (c cutCase) name() string {
	if c.ep.Format() == FormatOpenAI && c.ep != EndpointResponses && !c.clientUsage {
		return c.file + ".hidden"
	}
	return c.file
}

type cutGolden struct {
	Client        string `json:"client"`
	Units         int    `json:"units"`
	Cut           bool   `json:"cut"`
	Usage         Usage  `json:"usage"`
	PromptFromUp  bool   `json:"prompt_from_upstream"`
	DeliveredText string `json:"delivered_text"`
}

// cutHeld is the output allowance of the cut transcripts: three words of
// the six upstream sends.
const cutHeld = 3

// runCut pumps a transcript through an editor holding cutHeld output
// tokens and returns what the client received.
func runCut(t *testing.T, c cutCase) (cutGolden, []byte) {
	t.Helper()
	in, err := os.ReadFile(filepath.Join("testdata", "cut", c.file))
	if err != nil {
		t.Fatal(err)
	}
	var fr Framer = &SSEFramer{}
	if c.array {
		fr = NewArrayFramer()
	}
	m := NewMeter(c.ep)
	ed := &StreamEditor{Meter: m, HideUsageChunk: c.ep.Format() == FormatOpenAI && !c.clientUsage,
		From: c.from, To: c.to, HeldOutput: cutHeld, Tokens: &wordCounter{}, ClientUsage: c.clientUsage,
		PromptTokens: func() int64 { return 5 }}
	var client, marked bytes.Buffer
	p := PumpStream(&chunkReader{data: in, n: 11, err: io.EOF}, fr, ed, c.ep, func(b []byte) error {
		client.Write(b)
		marked.Write(b)
		marked.WriteString("|")
		return nil
	}, make([]byte, 64))
	g := cutGolden{Client: marked.String(), Units: p.Units, Cut: p.Cut, DeliveredText: string(m.DeliveredText())}
	g.Usage, g.PromptFromUp = ed.CutUsage()
	return g, client.Bytes()
}

// TestCutTerminalGolden cuts every format's stream at its allowance and
// checks the transcript against its golden file, then has each vendor's
// own SDK read what the client received: it must end as a max-tokens
// answer, with the delivered text and the billed usage.
func TestCutTerminalGolden(t *testing.T) {
	for _, c := range cutCases {
		t.Run(c.name(), func(t *testing.T) {
			g, client := runCut(t, c)
			out, _ := json.MarshalIndent(g, "", "  ")
			golden.Bytes(t, filepath.Join("cut", c.name()+".golden"), append(out, '\n'))
			if !g.Cut {
				t.Fatal("the stream was not cut")
			}
			if g.Usage.Completion > cutHeld || g.Usage.Completion <= 0 || g.Usage.Prompt <= 0 {
				t.Errorf("billed usage %+v, want 0 < completion <= %d and a prompt", g.Usage, cutHeld)
			}
			wantText := "w0 w1 w2 "
			if c.file == "gemini_stream_counted.sse" {
				wantText = "w0 " // upstream's own count passed the allowance first
			}
			if g.DeliveredText != wantText {
				t.Errorf("delivered %q, want %q", g.DeliveredText, wantText)
			}
			sdkReadsCut(t, c, client, wantText, g.Usage)
		})
	}
}

// sdkReadsCut serves client to the vendor SDK of c's format and checks
// that the stream parses to a finished max-tokens answer.
func sdkReadsCut(t *testing.T, c cutCase, client []byte, wantText string, u Usage) {
	t.Helper()
	if c.array {
		var elems []struct {
			Candidates []struct {
				FinishReason string `json:"finishReason"`
			} `json:"candidates"`
			UsageMetadata struct {
				CandidatesTokenCount int64 `json:"candidatesTokenCount"`
			} `json:"usageMetadata"`
		}
		if err := json.Unmarshal(client, &elems); err != nil {
			t.Fatalf("the array stream is not a JSON array: %v\n%s", err, client)
		}
		last := elems[len(elems)-1]
		if last.Candidates[0].FinishReason != "MAX_TOKENS" || last.UsageMetadata.CandidatesTokenCount != u.Completion {
			t.Errorf("last element %+v", last)
		}
		return
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write(client)
	}))
	defer srv.Close()
	ctx := context.Background()
	switch c.ep {
	case EndpointChatCompletions:
		oc := openai.NewClient(ooption.WithBaseURL(srv.URL), ooption.WithAPIKey("k"), ooption.WithMaxRetries(0))
		s := oc.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "m",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
		var acc openai.ChatCompletionAccumulator
		for s.Next() {
			acc.AddChunk(s.Current())
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if acc.Choices[0].FinishReason != "length" || acc.Choices[0].Message.Content != wantText {
			t.Errorf("accumulated %s", acc.RawJSON())
		}
		if c.to != "" && acc.Model != c.to {
			t.Errorf("model %q, want the alias %q", acc.Model, c.to)
		}
		if c.clientUsage != (acc.Usage.CompletionTokens == u.Completion && acc.Usage.PromptTokens == u.Prompt) {
			t.Errorf("usage %+v (client asked: %v), billed %+v", acc.Usage, c.clientUsage, u)
		}
	case EndpointCompletions:
		oc := openai.NewClient(ooption.WithBaseURL(srv.URL), ooption.WithAPIKey("k"), ooption.WithMaxRetries(0))
		s := oc.Completions.NewStreaming(ctx, openai.CompletionNewParams{Model: "m",
			Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("hi")}})
		var text strings.Builder
		var finish string
		var usage openai.CompletionUsage
		for s.Next() {
			ch := s.Current()
			for _, choice := range ch.Choices {
				text.WriteString(choice.Text)
				if choice.FinishReason != "" {
					finish = string(choice.FinishReason)
				}
			}
			if ch.Usage.TotalTokens > 0 {
				usage = ch.Usage
			}
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if finish != "length" || text.String() != wantText || usage.CompletionTokens != u.Completion {
			t.Errorf("finish %q text %q usage %+v", finish, text.String(), usage)
		}
	case EndpointResponses:
		oc := openai.NewClient(ooption.WithBaseURL(srv.URL), ooption.WithAPIKey("k"), ooption.WithMaxRetries(0))
		s := oc.Responses.NewStreaming(ctx, responses.ResponseNewParams{Model: "m"})
		var last responses.ResponseStreamEventUnion
		var text strings.Builder
		for s.Next() {
			last = s.Current()
			if last.Type == "response.output_text.delta" {
				text.WriteString(last.Delta)
			}
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		ev := last.AsResponseIncomplete()
		if ev.Type != "response.incomplete" || ev.Response.Status != "incomplete" ||
			ev.Response.IncompleteDetails.Reason != "max_output_tokens" || ev.Response.Usage.OutputTokens != u.Completion ||
			ev.Response.ID != "resp_9" || text.String() != wantText {
			t.Errorf("last event %s, text %q", last.RawJSON(), text.String())
		}
	case EndpointMessages:
		ac := anthropic.NewClient(aoption.WithoutEnvironmentDefaults(), aoption.WithBaseURL(srv.URL),
			aoption.WithAPIKey("k"), aoption.WithMaxRetries(0))
		s := ac.Messages.NewStreaming(ctx, anthropic.MessageNewParams{Model: "m", MaxTokens: 3,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}})
		var msg anthropic.Message
		var types []string
		for s.Next() {
			ev := s.Current()
			types = append(types, ev.Type)
			if err := msg.Accumulate(ev); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		n := len(types)
		if n < 3 || types[n-3] != "content_block_stop" || types[n-2] != "message_delta" || types[n-1] != "message_stop" {
			t.Errorf("event types %q", types)
		}
		if msg.StopReason != "max_tokens" || msg.Content[0].Text != wantText || msg.Usage.OutputTokens != u.Completion {
			t.Errorf("message %s", msg.RawJSON())
		}
	case EndpointStreamGenerateContent:
		gc, err := genai.NewClient(ctx, &genai.ClientConfig{APIKey: "k", Backend: genai.BackendGeminiAPI,
			HTTPOptions: genai.HTTPOptions{BaseURL: srv.URL}})
		if err != nil {
			t.Fatal(err)
		}
		var text strings.Builder
		var last *genai.GenerateContentResponse
		for resp, err := range gc.Models.GenerateContentStream(ctx, "gemini-2.5-flash", genai.Text("hi"), nil) {
			if err != nil {
				t.Fatal(err)
			}
			text.WriteString(resp.Text())
			last = resp
		}
		if last == nil || last.Candidates[0].FinishReason != genai.FinishReasonMaxTokens ||
			last.UsageMetadata.CandidatesTokenCount != int32(u.Completion) || text.String() != wantText {
			t.Errorf("text %q, last %+v", text.String(), last)
		}
	}
}

// TestStreamWithinAllowanceUntouched runs the usage transcripts (every
// one ends within its output) with a generous allowance: the client gets
// exactly what it gets with no allowance, and the tokenizer never runs.
func TestStreamWithinAllowanceUntouched(t *testing.T) {
	for _, c := range []struct {
		file  string
		ep    Endpoint
		array bool
	}{
		{"openai_chat_stream.sse", EndpointChatCompletions, false},
		{"openai_responses_stream.sse", EndpointResponses, false},
		{"anthropic_messages_stream.sse", EndpointMessages, false},
		{"gemini_stream.sse", EndpointStreamGenerateContent, false},
		{"gemini_stream_array.json", EndpointStreamGenerateContent, true},
	} {
		t.Run(c.file, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", "usage", c.file))
			if err != nil {
				t.Fatal(err)
			}
			run := func(held int64, tok TokenCounter) ([]byte, Pump) {
				var fr Framer = &SSEFramer{}
				if c.array {
					fr = NewArrayFramer()
				}
				var out bytes.Buffer
				ed := &StreamEditor{Meter: NewMeter(c.ep), HeldOutput: held, Tokens: tok}
				p := PumpStream(&chunkReader{data: in, n: 5, err: io.EOF}, fr, ed, c.ep, func(b []byte) error {
					out.Write(b)
					return nil
				}, make([]byte, 32))
				return out.Bytes(), p
			}
			want, _ := run(0, nil)
			wc := &wordCounter{}
			got, p := run(4096, wc)
			if !bytes.Equal(got, want) || p.Cut {
				t.Errorf("with an allowance the client got\n%s\nwant\n%s", got, want)
			}
			if wc.calls != 0 {
				t.Errorf("the tokenizer ran %d times for a stream far within its allowance", wc.calls)
			}
		})
	}
}

// TestCutStopsReading checks that a cut stream reads no more of upstream
// than the unit that crossed the allowance: nothing more is paid for.
func TestCutStopsReading(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "cut", "anthropic_messages_stream.sse"))
	if err != nil {
		t.Fatal(err)
	}
	// The upstream would go on forever after the transcript.
	src := io.MultiReader(bytes.NewReader(in), endless{})
	ed := &StreamEditor{Meter: NewMeter(EndpointMessages), HeldOutput: cutHeld, Tokens: &wordCounter{}}
	p := PumpStream(src, &SSEFramer{}, ed, EndpointMessages, func([]byte) error { return nil }, make([]byte, 256))
	if !p.Cut || p.UpstreamErr != nil {
		t.Fatalf("pump %+v", p)
	}
}

// endless is an upstream that never stops generating.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	ev := []byte("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"more \"}}\n\n")
	return copy(p, ev), nil
}

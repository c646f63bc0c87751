package openaichat

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// now is the clock of the "created" field; tests fix it.
var now = time.Now

// usage is OpenAI's usage object. cache_write_tokens under
// prompt_tokens_details is not OpenAI's own field but compatible servers
// (OpenRouter, LiteLLM) report cache writes there; it is read, and written
// when not zero so that a chat client of an upstream that bills cache
// writes apart (Anthropic) sees them, as a Responses client does. The
// tokens stay counted inside prompt_tokens either way.
type usage struct {
	PromptTokens            int64              `json:"prompt_tokens"`
	CompletionTokens        int64              `json:"completion_tokens"`
	TotalTokens             int64              `json:"total_tokens"`
	PromptTokensDetails     *promptDetails     `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *completionDetails `json:"completion_tokens_details,omitempty"`
}

type promptDetails struct {
	CachedTokens     int64 `json:"cached_tokens"`
	CacheWriteTokens int64 `json:"cache_write_tokens,omitempty"`
}

type completionDetails struct {
	ReasoningTokens int64 `json:"reasoning_tokens"`
}

func (u *usage) canonical() wire.Usage {
	w := wire.Usage{Prompt: u.PromptTokens, Completion: u.CompletionTokens}
	if d := u.PromptTokensDetails; d != nil {
		w.Cached, w.CacheWrite = d.CachedTokens, d.CacheWriteTokens
	}
	if d := u.CompletionTokensDetails; d != nil {
		w.Reasoning = d.ReasoningTokens
	}
	return w
}

func fromCanonical(w wire.Usage) *usage {
	return &usage{
		PromptTokens: w.Prompt, CompletionTokens: w.Completion, TotalTokens: w.Prompt + w.Completion,
		PromptTokensDetails:     &promptDetails{CachedTokens: w.Cached, CacheWriteTokens: w.CacheWrite},
		CompletionTokensDetails: &completionDetails{ReasoningTokens: w.Reasoning},
	}
}

// ReadUsage reads the usage object of a chat completion or of one stream
// chunk's data. A chunk with "usage": null holds none.
func (Adapter) ReadUsage(data []byte) (wire.Usage, bool) {
	if !bytes.Contains(data, []byte(`"usage"`)) {
		return wire.Usage{}, false
	}
	var doc struct {
		Usage *usage `json:"usage"`
	}
	if json.Unmarshal(data, &doc) != nil || doc.Usage == nil {
		return wire.Usage{}, false
	}
	return doc.Usage.canonical(), true
}

// completion is a chat completion (the complete answer).
type completion struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"`
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []choice `json:"choices"`
	Usage   *usage   `json:"usage,omitempty"`
}

type choice struct {
	Index        int             `json:"index"`
	Message      responseMessage `json:"message"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

// responseMessage is the assistant message of an answer: content and
// refusal are null rather than absent when unset, as OpenAI writes them.
type responseMessage struct {
	Role             string     `json:"role"`
	Content          *string    `json:"content"`
	Refusal          *string    `json:"refusal"`
	ReasoningContent string     `json:"reasoning_content,omitempty"`
	Reasoning        string     `json:"reasoning,omitempty"`
	ToolCalls        []toolCall `json:"tool_calls,omitempty"`
}

// ErrNoChoice is returned by DecodeResponse for an answer without choices.
var ErrNoChoice = errors.New("openaichat: the answer has no choices")

// DecodeResponse decodes a chat completion: the first choice (a canonical
// answer has one; requests for more are refused on translation).
// Reasoning comes first (reasoning_content of DeepSeek-style servers, or
// reasoning), then text (content, or refusal), then tool calls.
func (Adapter) DecodeResponse(body []byte) (*wire.Response, error) {
	var c completion
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, err
	}
	if len(c.Choices) == 0 {
		return nil, ErrNoChoice
	}
	resp := &wire.Response{ID: c.ID, Model: c.Model}
	ch := &c.Choices[0]
	m := &ch.Message
	if r := m.ReasoningContent + m.Reasoning; r != "" {
		resp.Parts = append(resp.Parts, wire.Part{Kind: wire.PartReasoning, Text: r})
	}
	if m.Content != nil && *m.Content != "" {
		resp.Parts = append(resp.Parts, wire.Part{Kind: wire.PartText, Text: *m.Content})
	} else if m.Refusal != nil && *m.Refusal != "" {
		resp.Parts = append(resp.Parts, wire.Part{Kind: wire.PartText, Text: *m.Refusal})
	}
	for _, tc := range m.ToolCalls {
		resp.Parts = append(resp.Parts, wire.Part{Kind: wire.PartToolCall, ToolCall: &wire.ToolCall{
			ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments}})
	}
	if ch.FinishReason != nil {
		resp.Finish = finishFrom(*ch.FinishReason)
	}
	if c.Usage != nil {
		resp.Usage, resp.HasUsage = c.Usage.canonical(), true
	}
	return resp, nil
}

// finishFrom maps OpenAI's finish_reason; function_call is the deprecated
// spelling of tool_calls, and anything unknown reads as stop.
func finishFrom(s string) wire.FinishReason {
	switch s {
	case "length":
		return wire.FinishLength
	case "tool_calls", "function_call":
		return wire.FinishToolCalls
	case "content_filter":
		return wire.FinishContentFilter
	}
	return wire.FinishStop
}

// finishTo maps a canonical finish reason to OpenAI's; an upstream error
// has no OpenAI reason and reads as stop.
func finishTo(f wire.FinishReason) string {
	switch f {
	case wire.FinishLength, wire.FinishToolCalls, wire.FinishContentFilter:
		return string(f)
	}
	return "stop"
}

// EncodeResponse encodes resp as a chat completion under the client's
// model name. Text parts are joined, reasoning goes into
// reasoning_content, and content is null when the answer is only tool
// calls, as OpenAI writes it. Without upstream usage no usage is written.
func (Adapter) EncodeResponse(resp *wire.Response, req *wire.Request) ([]byte, error) {
	var text, reasoning strings.Builder
	m := responseMessage{Role: "assistant"}
	hasText := false
	for _, p := range resp.Parts {
		switch p.Kind {
		case wire.PartText:
			text.WriteString(p.Text)
			hasText = true
		case wire.PartReasoning:
			reasoning.WriteString(p.Text)
		case wire.PartToolCall:
			m.ToolCalls = append(m.ToolCalls, toolCall{ID: p.ToolCall.ID, Type: "function",
				Function: functionCall{Name: p.ToolCall.Name, Arguments: p.ToolCall.Arguments}})
		}
	}
	if hasText || len(m.ToolCalls) == 0 {
		s := text.String()
		m.Content = &s
	}
	m.ReasoningContent = reasoning.String()
	finish := finishTo(resp.Finish)
	c := completion{ID: resp.ID, Object: "chat.completion", Created: now().Unix(), Model: req.Model,
		Choices: []choice{{Message: m, Logprobs: json.RawMessage("null"), FinishReason: &finish}}}
	if resp.HasUsage {
		c.Usage = fromCanonical(resp.Usage)
	}
	return marshal(c)
}

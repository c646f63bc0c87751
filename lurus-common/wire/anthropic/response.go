package anthropic

import (
	"encoding/json"
	"fmt"

	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// usageIn is a usage object as read: pointers tell absent from zero, which
// matters for a stream's message_delta (it may omit the input counts).
type usageIn struct {
	InputTokens              *int64 `json:"input_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
	OutputTokensDetails      *struct {
		ThinkingTokens *int64 `json:"thinking_tokens"`
	} `json:"output_tokens_details"`
}

// counts is Anthropic's own view of usage (input without the cache
// counts); canonical() converts it once, so nothing is summed twice.
type counts struct {
	input, cacheWrite, cacheRead, output, thinking int64
}

// maxCount bounds a count read from upstream, so that the canonical sums
// cannot overflow: 2^53, the largest integer every JSON reader keeps.
const maxCount = 1 << 53

// merge overwrites the counts u carries: every Anthropic count is a
// cumulative total, never an increment. A negative count (an upstream
// bug) reads as 0, so it can never credit anyone.
func (c *counts) merge(u *usageIn) {
	if u == nil {
		return
	}
	set := func(dst *int64, v *int64) {
		if v != nil {
			*dst = min(max(*v, 0), maxCount)
		}
	}
	set(&c.input, u.InputTokens)
	set(&c.cacheWrite, u.CacheCreationInputTokens)
	set(&c.cacheRead, u.CacheReadInputTokens)
	set(&c.output, u.OutputTokens)
	if u.OutputTokensDetails != nil {
		set(&c.thinking, u.OutputTokensDetails.ThinkingTokens)
	}
}

func (c counts) canonical() wire.Usage {
	return wire.Usage{
		Prompt:     c.input + c.cacheRead + c.cacheWrite,
		Completion: c.output,
		Cached:     c.cacheRead,
		CacheWrite: c.cacheWrite,
		Reasoning:  c.thinking,
	}
}

// messageIn is a complete Messages answer, or a count_tokens answer
// (InputTokens only).
type messageIn struct {
	ID          string   `json:"id"`
	Model       string   `json:"model"`
	Content     []block  `json:"content"`
	StopReason  string   `json:"stop_reason"`
	Usage       *usageIn `json:"usage"`
	InputTokens *int64   `json:"input_tokens"`
}

// DecodeResponse decodes a Messages answer (or a count_tokens answer).
// Thinking becomes reasoning (its signature is not kept); redacted
// thinking and server-tool blocks, which no other format can show, are
// left out.
func (Adapter) DecodeResponse(body []byte) (*wire.Response, error) {
	var m messageIn
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("anthropic: decode answer: %w", err)
	}
	if m.InputTokens != nil && m.Content == nil {
		return &wire.Response{InputTokens: *m.InputTokens}, nil
	}
	resp := &wire.Response{ID: m.ID, Model: m.Model, Finish: finishIn(m.StopReason)}
	for _, b := range m.Content {
		switch b.Type {
		case "text":
			resp.Parts = append(resp.Parts, wire.Part{Kind: wire.PartText, Text: b.Text})
		case "thinking":
			resp.Parts = append(resp.Parts, wire.Part{Kind: wire.PartReasoning, Text: b.Thinking})
		case "tool_use":
			args := compact(b.Input)
			if args == nil {
				args = json.RawMessage("{}")
			}
			resp.Parts = append(resp.Parts, wire.Part{Kind: wire.PartToolCall, ToolCall: &wire.ToolCall{ID: b.ID, Name: b.Name, Arguments: string(args)}})
		}
	}
	if m.Usage != nil {
		var c counts
		c.merge(m.Usage)
		resp.Usage, resp.HasUsage = c.canonical(), true
	}
	return resp, nil
}

// outContent is a content block of an encoded answer; the SDKs expect
// every field of its type present (text "", input {}, signature "").
type outContent struct {
	Type      string          `json:"type"`
	Text      *string         `json:"text,omitempty"`
	Thinking  *string         `json:"thinking,omitempty"`
	Signature *string         `json:"signature,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
}

// outAnswer is a complete answer, and the message of message_start (with
// no content and a null stop_reason).
type outAnswer struct {
	ID           string       `json:"id"`
	Type         string       `json:"type"`
	Role         string       `json:"role"`
	Model        string       `json:"model"`
	Content      []outContent `json:"content"`
	StopReason   *string      `json:"stop_reason"`
	StopSequence *string      `json:"stop_sequence"`
	Usage        usageJSON    `json:"usage"`
}

// EncodeResponse encodes an answer as a Messages answer under the
// client's model name (or {"input_tokens":n} for count_tokens). Tool-call
// arguments that are not a JSON object (a model's broken output) cannot be
// an Anthropic input and fail the encoding.
func (Adapter) EncodeResponse(resp *wire.Response, req *wire.Request) ([]byte, error) {
	if req.Op == wire.OpCountTokens {
		return marshal(struct {
			InputTokens int64 `json:"input_tokens"`
		}{resp.InputTokens})
	}
	stop := finishOut(resp.Finish)
	out := outAnswer{ID: resp.ID, Type: "message", Role: "assistant", Model: req.Model,
		Content: []outContent{}, StopReason: &stop, Usage: usageOut(resp.Usage)}
	for _, p := range resp.Parts {
		switch p.Kind {
		case wire.PartText:
			out.Content = append(out.Content, outContent{Type: "text", Text: &p.Text})
		case wire.PartReasoning:
			sig := ""
			out.Content = append(out.Content, outContent{Type: "thinking", Thinking: &p.Text, Signature: &sig})
		case wire.PartToolCall:
			if p.ToolCall == nil {
				continue
			}
			input, err := argsObject(p.ToolCall.Arguments)
			if err != nil {
				return nil, fmt.Errorf("anthropic: tool call %q: %w", p.ToolCall.Name, err)
			}
			out.Content = append(out.Content, outContent{Type: "tool_use", ID: p.ToolCall.ID, Name: p.ToolCall.Name, Input: input})
		}
	}
	return marshal(out)
}

// ReadUsage reads the usage of a complete answer, a count_tokens answer
// (its input_tokens as Prompt) or one stream event (message_start's
// message.usage, message_delta's usage). A message_delta usually carries
// only output_tokens, so the stream's whole usage is what the stream
// decoder's EventUsage says, which merges both.
func (Adapter) ReadUsage(data []byte) (wire.Usage, bool) {
	var ev struct {
		Type    string `json:"type"`
		Message *struct {
			Usage *usageIn `json:"usage"`
		} `json:"message"`
		Usage       *usageIn `json:"usage"`
		InputTokens *int64   `json:"input_tokens"`
	}
	if json.Unmarshal(data, &ev) != nil {
		return wire.Usage{}, false
	}
	u := ev.Usage
	if ev.Type == "message_start" && ev.Message != nil {
		u = ev.Message.Usage
	}
	if u == nil {
		if ev.InputTokens != nil && ev.Type == "" {
			return wire.Usage{Prompt: *ev.InputTokens}, true
		}
		return wire.Usage{}, false
	}
	var c counts
	c.merge(u)
	return c.canonical(), true
}

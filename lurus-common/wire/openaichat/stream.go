package openaichat

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// chunk is one chat.completion.chunk, as decoded.
type chunk struct {
	ID      string          `json:"id"`
	Model   string          `json:"model"`
	Choices []chunkChoice   `json:"choices"`
	Usage   *usage          `json:"usage"`
	Error   json.RawMessage `json:"error"`
}

type chunkChoice struct {
	Index        int     `json:"index"`
	Delta        delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

// delta is the delta of a chunk. reasoning_content is DeepSeek's (and
// most compatible servers') field for thinking; reasoning is the one of
// newer vLLM and OpenRouter. The encoder writes reasoning_content only.
type delta struct {
	Role             string     `json:"role,omitempty"`
	Content          *string    `json:"content,omitempty"`
	ReasoningContent *string    `json:"reasoning_content,omitempty"`
	Reasoning        *string    `json:"reasoning,omitempty"`
	Refusal          *string    `json:"refusal,omitempty"`
	ToolCalls        []toolCall `json:"tool_calls,omitempty"`
}

// NewStreamDecoder returns a decoder for one upstream chat stream.
func (Adapter) NewStreamDecoder() wire.EventDecoder {
	return &eventDecoder{calls: map[int]int{}}
}

// eventDecoder turns chunks into canonical events. Tool calls are
// numbered densely in order of appearance (Event.Index), whatever indexes
// the upstream used.
type eventDecoder struct {
	started bool
	// calls maps an upstream tool call index to the canonical one, and
	// ids holds each canonical call's id: a new id at a known upstream
	// index starts a new call (servers that send each call whole at
	// index 0).
	calls map[int]int
	ids   []string
}

// Decode decodes the data of one SSE event. [DONE] yields nothing; an
// error object yields EventError; only choice 0 is read.
func (d *eventDecoder) Decode(data []byte, emit func(wire.Event)) error {
	data = bytes.TrimSpace(data)
	if bytes.Equal(data, []byte("[DONE]")) {
		return nil
	}
	var c chunk
	if err := json.Unmarshal(data, &c); err != nil {
		return err
	}
	if !isNull(c.Error) {
		emit(wire.Event{Kind: wire.EventError, Text: Adapter{}.DecodeError(data)})
		return nil
	}
	// Azure opens with a chunk holding only prompt_filter_results (no
	// choices, no id): it does not start the stream.
	if !d.started && (len(c.Choices) > 0 || c.Usage != nil) {
		d.started = true
		emit(wire.Event{Kind: wire.EventStart, ID: c.ID, Model: c.Model})
	}
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Index != 0 {
			continue
		}
		dl := &ch.Delta
		for _, r := range []*string{dl.ReasoningContent, dl.Reasoning} {
			if r != nil && *r != "" {
				emit(wire.Event{Kind: wire.EventReasoning, Text: *r})
			}
		}
		if dl.Content != nil && *dl.Content != "" {
			emit(wire.Event{Kind: wire.EventText, Text: *dl.Content})
		}
		if dl.Refusal != nil && *dl.Refusal != "" {
			emit(wire.Event{Kind: wire.EventText, Text: *dl.Refusal})
		}
		for j := range dl.ToolCalls {
			d.toolCall(j, &dl.ToolCalls[j], emit)
		}
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			emit(wire.Event{Kind: wire.EventFinish, Finish: finishFrom(*ch.FinishReason)})
		}
	}
	if c.Usage != nil {
		emit(wire.Event{Kind: wire.EventUsage, Usage: c.Usage.canonical()})
	}
	return nil
}

func (d *eventDecoder) toolCall(pos int, tc *toolCall, emit func(wire.Event)) {
	up := pos
	if tc.Index != nil {
		up = *tc.Index
	}
	ci, ok := d.calls[up]
	if !ok || (tc.ID != "" && tc.ID != d.ids[ci]) {
		ci = len(d.ids)
		d.calls[up] = ci
		id := tc.ID
		if id == "" {
			id = "call_" + strconv.Itoa(ci) // the result must name the call
		}
		d.ids = append(d.ids, id)
		emit(wire.Event{Kind: wire.EventToolCall, Index: ci, ToolCallID: id, ToolName: tc.Function.Name})
	}
	if tc.Function.Arguments != "" {
		emit(wire.Event{Kind: wire.EventToolArgs, Index: ci, Text: tc.Function.Arguments})
	}
}

// outChunk is a chunk as the encoder writes it, in OpenAI's field order.
type outChunk struct {
	ID      string          `json:"id"`
	Object  string          `json:"object"`
	Created int64           `json:"created"`
	Model   string          `json:"model"`
	Choices []outChoice     `json:"choices"`
	Usage   json.RawMessage `json:"usage,omitempty"`
}

type outChoice struct {
	Index        int             `json:"index"`
	Delta        delta           `json:"delta"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

// NewStreamEncoder returns an encoder of a chat stream for the client's
// request req: chunks carry req.Model, and the final usage chunk
// (choices: []) is written only when the client set
// stream_options.include_usage, as OpenAI does.
func (Adapter) NewStreamEncoder(req *wire.Request) wire.EventEncoder {
	return &eventEncoder{model: req.Model, includeUsage: req.IncludeUsage, calls: map[int]int{}}
}

type eventEncoder struct {
	id, model    string
	created      int64
	includeUsage bool
	started      bool
	done         bool
	usage        *wire.Usage
	// calls maps a canonical tool call index to the dense OpenAI index
	// the SDKs' accumulators expect.
	calls map[int]int
}

var null = json.RawMessage("null")

// Encode appends the chunk of ev. A stream that did not begin with
// EventStart gets the opening chunk before its first event.
func (e *eventEncoder) Encode(dst []byte, ev wire.Event) []byte {
	if e.done {
		return dst
	}
	if !e.started && ev.Kind != wire.EventError {
		if ev.Kind == wire.EventStart {
			e.id = ev.ID
		}
		dst = e.start(dst)
		if ev.Kind == wire.EventStart {
			return dst
		}
	}
	switch ev.Kind {
	case wire.EventText:
		if ev.Text != "" {
			dst = e.delta(dst, delta{Content: &ev.Text}, nil)
		}
	case wire.EventReasoning:
		if ev.Text != "" {
			dst = e.delta(dst, delta{ReasoningContent: &ev.Text}, nil)
		}
	case wire.EventToolCall:
		i := len(e.calls)
		e.calls[ev.Index] = i
		dst = e.delta(dst, delta{ToolCalls: []toolCall{{Index: &i, ID: ev.ToolCallID, Type: "function",
			Function: functionCall{Name: ev.ToolName}}}}, nil)
	case wire.EventToolArgs:
		i, ok := e.calls[ev.Index]
		if ok && ev.Text != "" {
			dst = e.delta(dst, delta{ToolCalls: []toolCall{{Index: &i, Function: functionCall{Arguments: ev.Text}}}}, nil)
		}
	case wire.EventFinish:
		f := finishTo(ev.Finish)
		dst = e.delta(dst, delta{}, &f)
	case wire.EventUsage:
		u := ev.Usage
		e.usage = &u
	case wire.EventError:
		e.done = true
		dst = Adapter{}.AppendStreamError(dst, Adapter{}.RenderError(http.StatusBadGateway, string(apperr.ReasonUpstreamError), ev.Text))
	}
	return dst
}

// End appends the usage chunk (when the client asked for it and upstream
// gave usage) and [DONE].
func (e *eventEncoder) End(dst []byte) []byte {
	if e.done {
		return dst
	}
	e.done = true
	if e.includeUsage && e.usage != nil {
		u, _ := marshal(fromCanonical(*e.usage))
		dst = e.chunk(dst, outChunk{Choices: []outChoice{}, Usage: u})
	}
	return appendData(dst, []byte("[DONE]"))
}

func (e *eventEncoder) start(dst []byte) []byte {
	e.started = true
	e.created = now().Unix()
	if e.id == "" {
		e.id = "chatcmpl-" + strconv.FormatInt(e.created, 36)
	}
	empty := ""
	return e.delta(dst, delta{Role: "assistant", Content: &empty}, nil)
}

func (e *eventEncoder) delta(dst []byte, d delta, finish *string) []byte {
	return e.chunk(dst, outChunk{Choices: []outChoice{{Delta: d, Logprobs: null, FinishReason: finish}}})
}

func (e *eventEncoder) chunk(dst []byte, c outChunk) []byte {
	c.ID, c.Object, c.Created, c.Model = e.id, "chat.completion.chunk", e.created, e.model
	if e.includeUsage && c.Usage == nil {
		c.Usage = null // OpenAI writes "usage": null on every chunk then
	}
	b, err := marshal(c)
	if err != nil {
		return dst // cannot happen: every field is plain data
	}
	return appendData(dst, b)
}

func appendData(dst, data []byte) []byte {
	dst = append(dst, "data: "...)
	dst = append(dst, data...)
	return append(dst, "\n\n"...)
}

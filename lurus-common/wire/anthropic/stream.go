package anthropic

import (
	"encoding/json"
	"fmt"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// streamEvent is the data of one Anthropic stream event.
type streamEvent struct {
	Type    string `json:"type"`
	Message *struct {
		ID    string   `json:"id"`
		Model string   `json:"model"`
		Usage *usageIn `json:"usage"`
	} `json:"message"`
	Index        int    `json:"index"`
	ContentBlock *block `json:"content_block"`
	Delta        *struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		PartialJSON string `json:"partial_json"`
		Thinking    string `json:"thinking"`
		StopReason  string `json:"stop_reason"`
	} `json:"delta"`
	Usage *usageIn `json:"usage"`
	Error *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// blockKind is what a stream's content block carries canonically.
type blockKind uint8

const (
	blockIgnored blockKind = iota // redacted thinking, server tools
	blockText
	blockThinking
	blockTool
)

// decoder turns one upstream Messages stream into canonical events.
type decoder struct {
	// blocks maps a content block index to its kind, and tools a tool_use
	// block's index to its canonical tool call index.
	blocks map[int]blockKind
	tools  map[int]int
	usage  counts
}

// NewStreamDecoder returns a decoder for one upstream stream. Usage is
// emitted after message_start (so a stream cut early still has its input
// counts) and after message_delta, each time as the merged total.
func (Adapter) NewStreamDecoder() wire.EventDecoder {
	return &decoder{blocks: map[int]blockKind{}, tools: map[int]int{}}
}

// Decode decodes one SSE event's data. ping, content_block_stop,
// message_stop, signature and citation deltas carry nothing canonical.
func (d *decoder) Decode(data []byte, emit func(wire.Event)) error {
	var ev streamEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return fmt.Errorf("anthropic: decode stream event: %w", err)
	}
	switch ev.Type {
	case "message_start":
		if ev.Message == nil {
			return fmt.Errorf("anthropic: message_start without message")
		}
		emit(wire.Event{Kind: wire.EventStart, ID: ev.Message.ID, Model: ev.Message.Model})
		if ev.Message.Usage != nil {
			d.usage.merge(ev.Message.Usage)
			emit(wire.Event{Kind: wire.EventUsage, Usage: d.usage.canonical()})
		}
	case "content_block_start":
		if ev.ContentBlock == nil {
			return fmt.Errorf("anthropic: content_block_start without content_block")
		}
		d.blockStart(ev.Index, ev.ContentBlock, emit)
	case "content_block_delta":
		if ev.Delta == nil {
			return fmt.Errorf("anthropic: content_block_delta without delta")
		}
		d.blockDelta(ev.Index, ev.Delta.Type, ev.Delta.Text, ev.Delta.PartialJSON, ev.Delta.Thinking, emit)
	case "message_delta":
		if ev.Delta != nil && ev.Delta.StopReason != "" {
			emit(wire.Event{Kind: wire.EventFinish, Finish: finishIn(ev.Delta.StopReason)})
		}
		if ev.Usage != nil {
			d.usage.merge(ev.Usage)
			emit(wire.Event{Kind: wire.EventUsage, Usage: d.usage.canonical()})
		}
	case "error":
		msg := "upstream stream failed"
		if ev.Error != nil && ev.Error.Message != "" {
			msg = ev.Error.Message
		}
		emit(wire.Event{Kind: wire.EventError, Text: msg})
	}
	return nil
}

func (d *decoder) blockStart(i int, b *block, emit func(wire.Event)) {
	switch b.Type {
	case "text":
		d.blocks[i] = blockText
		if b.Text != "" {
			emit(wire.Event{Kind: wire.EventText, Text: b.Text})
		}
	case "thinking":
		d.blocks[i] = blockThinking
		if b.Thinking != "" {
			emit(wire.Event{Kind: wire.EventReasoning, Text: b.Thinking})
		}
	case "tool_use":
		d.blocks[i] = blockTool
		n := len(d.tools)
		d.tools[i] = n
		emit(wire.Event{Kind: wire.EventToolCall, Index: n, ToolCallID: b.ID, ToolName: b.Name})
		// The API starts a tool_use block with input {} and streams the
		// arguments; a non-empty start input is the whole of them.
		if in := compact(b.Input); in != nil && string(in) != "{}" {
			emit(wire.Event{Kind: wire.EventToolArgs, Index: n, Text: string(in)})
		}
	default:
		d.blocks[i] = blockIgnored
	}
}

func (d *decoder) blockDelta(i int, typ, text, partial, thinking string, emit func(wire.Event)) {
	switch k := d.blocks[i]; {
	case typ == "text_delta" && k == blockText && text != "":
		emit(wire.Event{Kind: wire.EventText, Text: text})
	case typ == "thinking_delta" && k == blockThinking && thinking != "":
		emit(wire.Event{Kind: wire.EventReasoning, Text: thinking})
	case typ == "input_json_delta" && k == blockTool && partial != "":
		emit(wire.Event{Kind: wire.EventToolArgs, Index: d.tools[i], Text: partial})
	}
}

// encoder writes canonical events as a Messages stream for a client.
//
// The official SDKs accumulate content blocks by index and expect them
// to start in index order without gaps, each opened by content_block_start
// (a tool_use block with input {}) before its deltas. The encoder keeps one
// block open at a time: a delta of another kind, or another tool call,
// closes it and opens the next. Canonical decoders give each tool call's
// arguments contiguously; a late delta for an already closed tool block
// is still sent under that block's own index, which the SDKs accept.
//
// The stop reason and the usage are held until End, since upstreams other
// than Anthropic report usage after the finish: message_delta then carries
// the whole usage (input_tokens and the cache counts too, as the API
// itself now does), followed by message_stop.
type encoder struct {
	model, id string
	started   bool
	// open is the index of the open block (-1: none), kind its kind, next
	// the index of the next block.
	open, next int
	kind       blockKind
	// toolBlocks maps canonical tool call indexes to block indexes.
	toolBlocks map[int]int
	finish     wire.FinishReason
	usage      wire.Usage
	// failed is set once an error event ended the stream: nothing may
	// follow it, least of all a message_delta saying end_turn, which
	// would tell the client its cut answer was complete.
	failed bool
}

// NewStreamEncoder returns an encoder for one client stream, under the
// client's model name.
func (Adapter) NewStreamEncoder(req *wire.Request) wire.EventEncoder {
	return &encoder{model: req.Model, open: -1, toolBlocks: map[int]int{}}
}

// sse appends one SSE event.
func sse(dst []byte, name string, v any) []byte {
	data, err := marshal(v)
	if err != nil {
		// Only plain structs and strings are encoded here.
		panic(err)
	}
	dst = append(dst, "event: "...)
	dst = append(dst, name...)
	dst = append(dst, "\ndata: "...)
	dst = append(dst, data...)
	return append(dst, "\n\n"...)
}

// start appends message_start once, before the first event that needs it,
// so that usage arriving right after the upstream's start (Gemini sends
// it with every chunk) is already in it: older SDKs read input_tokens
// from message_start only.
func (e *encoder) start(dst []byte) []byte {
	if e.started {
		return dst
	}
	e.started = true
	return sse(dst, "message_start", struct {
		Type    string    `json:"type"`
		Message outAnswer `json:"message"`
	}{"message_start", outAnswer{ID: e.id, Type: "message", Role: "assistant", Model: e.model,
		Content: []outContent{}, Usage: usageOut(e.usage)}})
}

// openBlock closes the open block and starts a new one.
func (e *encoder) openBlock(dst []byte, kind blockKind, cb outContent) []byte {
	dst = e.closeBlock(dst)
	e.open, e.kind = e.next, kind
	e.next++
	return sse(dst, "content_block_start", struct {
		Type         string     `json:"type"`
		Index        int        `json:"index"`
		ContentBlock outContent `json:"content_block"`
	}{"content_block_start", e.open, cb})
}

func (e *encoder) closeBlock(dst []byte) []byte {
	if e.open < 0 {
		return dst
	}
	i := e.open
	e.open = -1
	return sse(dst, "content_block_stop", struct {
		Type  string `json:"type"`
		Index int    `json:"index"`
	}{"content_block_stop", i})
}

type deltaJSON struct {
	Type        string  `json:"type"`
	Text        *string `json:"text,omitempty"`
	Thinking    *string `json:"thinking,omitempty"`
	PartialJSON *string `json:"partial_json,omitempty"`
}

func delta(dst []byte, index int, d deltaJSON) []byte {
	return sse(dst, "content_block_delta", struct {
		Type  string    `json:"type"`
		Index int       `json:"index"`
		Delta deltaJSON `json:"delta"`
	}{"content_block_delta", index, d})
}

// Encode appends the client events for ev. After an error event it
// appends nothing.
func (e *encoder) Encode(dst []byte, ev wire.Event) []byte {
	if e.failed {
		return dst
	}
	switch ev.Kind {
	case wire.EventStart:
		e.id = ev.ID
		return dst
	case wire.EventUsage:
		e.usage = ev.Usage
		return dst
	case wire.EventError:
		return e.errorEvent(dst, ev.Text)
	}
	dst = e.start(dst)
	if ev.Kind == wire.EventFinish {
		e.finish = ev.Finish
		return e.closeBlock(dst)
	}
	switch ev.Kind {
	case wire.EventText:
		if ev.Text == "" {
			return dst
		}
		if e.open < 0 || e.kind != blockText {
			empty := ""
			dst = e.openBlock(dst, blockText, outContent{Type: "text", Text: &empty})
		}
		return delta(dst, e.open, deltaJSON{Type: "text_delta", Text: &ev.Text})
	case wire.EventReasoning:
		if ev.Text == "" {
			return dst
		}
		if e.open < 0 || e.kind != blockThinking {
			empty, sig := "", ""
			dst = e.openBlock(dst, blockThinking, outContent{Type: "thinking", Thinking: &empty, Signature: &sig})
		}
		return delta(dst, e.open, deltaJSON{Type: "thinking_delta", Thinking: &ev.Text})
	case wire.EventToolCall:
		if _, seen := e.toolBlocks[ev.Index]; seen {
			return dst
		}
		dst = e.openBlock(dst, blockTool, outContent{Type: "tool_use", ID: ev.ToolCallID, Name: ev.ToolName, Input: json.RawMessage("{}")})
		e.toolBlocks[ev.Index] = e.open
		return dst
	case wire.EventToolArgs:
		b, ok := e.toolBlocks[ev.Index]
		if !ok || ev.Text == "" {
			// arguments of a call never started have no block to go to
			return dst
		}
		return delta(dst, b, deltaJSON{Type: "input_json_delta", PartialJSON: &ev.Text})
	}
	return dst
}

// errorEvent ends the stream abnormally with an Anthropic error event, in
// the shape of the gateway's own stream errors.
func (e *encoder) errorEvent(dst []byte, msg string) []byte {
	e.failed = true
	if msg == "" {
		msg = "upstream stream ended unexpectedly"
	}
	return Adapter{}.AppendStreamError(dst, Adapter{}.RenderError(502, string(apperr.ReasonUpstreamError), msg))
}

// End closes the open block and appends message_delta (stop reason and
// the whole usage) and message_stop; after an error event it appends
// nothing, as the other formats' encoders do.
func (e *encoder) End(dst []byte) []byte {
	if e.failed {
		return dst
	}
	dst = e.start(dst)
	dst = e.closeBlock(dst)
	stop := finishOut(e.finish)
	dst = sse(dst, "message_delta", struct {
		Type  string `json:"type"`
		Delta struct {
			StopReason   *string `json:"stop_reason"`
			StopSequence *string `json:"stop_sequence"`
		} `json:"delta"`
		Usage usageJSON `json:"usage"`
	}{Type: "message_delta", Delta: struct {
		StopReason   *string `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
	}{StopReason: &stop}, Usage: usageOut(e.usage)})
	return sse(dst, "message_stop", struct {
		Type string `json:"type"`
	}{"message_stop"})
}

package gemini

import (
	"encoding/json"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// NewStreamDecoder makes a decoder for one upstream stream: the data of
// each SSE event (alt=sse) or each element of a streamed array.
func (a Adapter) NewStreamDecoder() wire.EventDecoder { return &streamDecoder{} }

type streamDecoder struct {
	started bool
	// calls counts the function calls so far: their index and made-up id.
	calls    int
	usage    wire.Usage
	hasUsage bool
	finished bool
}

// Decode turns one GenerateContentResponse chunk into events. Text parts
// are deltas; a functionCall arrives whole, so it is a tool call start and
// one argument delta with the whole arguments; usageMetadata is the
// running total, emitted (when it changed) before the chunk's content so
// an encoder has the counts of the chunk it writes and the final counts
// when the finish comes.
func (d *streamDecoder) Decode(data []byte, emit func(wire.Event)) error {
	var probe struct {
		Error *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &probe) == nil && probe.Error != nil {
		emit(wire.Event{Kind: wire.EventError, Text: probe.Error.Message})
		return nil
	}
	var g gResponse
	if err := json.Unmarshal(data, &g); err != nil {
		return apperr.New(apperr.ReasonUpstreamError, "upstream stream chunk is malformed")
	}
	if !d.started {
		d.started = true
		emit(wire.Event{Kind: wire.EventStart, ID: g.ResponseID, Model: g.ModelVersion})
	}
	if g.UsageMetadata != nil {
		u := canonicalUsage(g.UsageMetadata)
		if !d.hasUsage || u != d.usage {
			d.usage, d.hasUsage = u, true
			emit(wire.Event{Kind: wire.EventUsage, Usage: u})
		}
	}
	finish := ""
	for _, c := range g.Candidates {
		if c.Index != 0 {
			continue
		}
		finish = c.FinishReason
		if c.Content == nil {
			continue
		}
		for _, p := range c.Content.Parts {
			d.part(p, g.ResponseID, emit)
		}
	}
	if finish == "" && len(g.Candidates) == 0 && g.PromptFeedback != nil && g.PromptFeedback.BlockReason != "" {
		finish = "SAFETY"
	}
	if finish != "" && !d.finished {
		d.finished = true
		emit(wire.Event{Kind: wire.EventFinish, Finish: finishReason(finish, d.calls > 0)})
	}
	return nil
}

func (d *streamDecoder) part(p gPart, responseID string, emit func(wire.Event)) {
	switch {
	case p.FunctionCall != nil:
		if p.FunctionCall.Name == "" {
			return
		}
		i := d.calls
		d.calls++
		id := p.FunctionCall.ID
		if id == "" {
			id = callID(responseID, i)
		}
		emit(wire.Event{Kind: wire.EventToolCall, Index: i, ToolCallID: id, ToolName: p.FunctionCall.Name})
		emit(wire.Event{Kind: wire.EventToolArgs, Index: i, Text: argsText(p.FunctionCall.Args)})
	case p.Text != nil && *p.Text != "":
		kind := wire.EventText
		if p.Thought {
			kind = wire.EventReasoning
		}
		emit(wire.Event{Kind: kind, Text: *p.Text})
	}
}

// NewStreamEncoder makes an encoder for one Gemini client stream, framed
// as SSE events or, with Array, as a streamed JSON array.
func (a Adapter) NewStreamEncoder(req *wire.Request) wire.EventEncoder {
	return &streamEncoder{array: a.Array, model: req.Model}
}

// streamEncoder writes one chunk per text or reasoning delta. Tool calls
// are held until their arguments are complete (Gemini sends a
// functionCall whole) and go out together in one chunk. The finish reason
// waits for End, so the last chunk carries it with the final usage, as
// Gemini's own last chunk does.
type streamEncoder struct {
	array bool
	// elems counts the array elements written.
	elems     int
	id, model string
	usage     *gUsage
	// sent is the usage of the last chunk written (nil before one).
	sent     *gUsage
	calls    []pendingArgs
	finish   wire.FinishReason
	finished bool
	closed   bool
}

type pendingArgs struct {
	name string
	args []byte
}

// Encode appends the client stream units for ev.
func (e *streamEncoder) Encode(dst []byte, ev wire.Event) []byte {
	if e.closed {
		return dst
	}
	switch ev.Kind {
	case wire.EventStart:
		e.id = ev.ID
		if ev.Model != "" {
			e.model = ev.Model
		}
	case wire.EventText, wire.EventReasoning:
		if ev.Text == "" {
			return dst
		}
		dst = e.flushCalls(dst)
		dst = e.chunk(dst, []gPart{textPart(ev.Text, ev.Kind == wire.EventReasoning)}, "")
	case wire.EventToolCall:
		for len(e.calls) <= ev.Index {
			e.calls = append(e.calls, pendingArgs{})
		}
		e.calls[ev.Index].name = ev.ToolName
	case wire.EventToolArgs:
		if ev.Index < len(e.calls) {
			e.calls[ev.Index].args = append(e.calls[ev.Index].args, ev.Text...)
		}
	case wire.EventUsage:
		e.usage = geminiUsage(ev.Usage)
	case wire.EventFinish:
		e.finish, e.finished = ev.Finish, true
	case wire.EventError:
		// What was held for the last chunk (tool calls, the usage so far)
		// goes out first: the client sees what it was given before the
		// error, as a Gemini stream shows it.
		if parts := e.takeCalls(); len(parts) > 0 {
			dst = e.chunk(dst, parts, "")
		} else if e.usage != nil && (e.sent == nil || *e.sent != *e.usage) {
			dst = e.chunk(dst, []gPart{textPart("", false)}, "")
		}
		dst = e.open(dst)
		dst = append(dst, Adapter{}.RenderError(502, string(apperr.ReasonUpstreamError), ev.Text)...)
		dst = e.closeUnit(dst)
		dst = e.end(dst)
		e.closed = true
	}
	return dst
}

// End appends the last chunk (finish reason and usage) and, for an
// array, the closing "]".
func (e *streamEncoder) End(dst []byte) []byte {
	if e.closed {
		return dst
	}
	finish := ""
	if e.finished {
		finish = geminiFinish(e.finish)
	}
	if parts := e.takeCalls(); len(parts) > 0 {
		// Gemini's last chunk of a tool call carries the calls themselves.
		dst = e.chunk(dst, parts, finish)
	} else if e.finished || e.usage != nil {
		dst = e.chunk(dst, []gPart{textPart("", false)}, finish)
	}
	e.closed = true
	return e.end(dst)
}

func (e *streamEncoder) end(dst []byte) []byte {
	if !e.array {
		return dst
	}
	if e.elems == 0 {
		dst = append(dst, '[')
	}
	return append(dst, ']')
}

// flushCalls writes the tool calls held so far as one chunk.
func (e *streamEncoder) flushCalls(dst []byte) []byte {
	if parts := e.takeCalls(); len(parts) > 0 {
		return e.chunk(dst, parts, "")
	}
	return dst
}

// takeCalls returns the held tool calls as functionCall parts.
func (e *streamEncoder) takeCalls() []gPart {
	var parts []gPart
	for _, c := range e.calls {
		if c.name != "" {
			parts = append(parts, callPart(c.name, string(c.args)))
		}
	}
	e.calls = e.calls[:0]
	return parts
}

func (e *streamEncoder) chunk(dst []byte, parts []gPart, finish string) []byte {
	g := gResponse{
		Candidates:    []gCandidate{{Content: &gContent{Role: "model", Parts: parts}, FinishReason: finish}},
		UsageMetadata: e.usage,
		ModelVersion:  e.model,
		ResponseID:    e.id,
	}
	b, err := marshal(g)
	if err != nil {
		return dst
	}
	if e.usage != nil {
		u := *e.usage
		e.sent = &u
	}
	dst = e.open(dst)
	dst = append(dst, b...)
	return e.closeUnit(dst)
}

func (e *streamEncoder) open(dst []byte) []byte {
	switch {
	case !e.array:
		dst = append(dst, "data: "...)
	case e.elems == 0:
		dst = append(dst, '[')
	default:
		dst = append(dst, ",\r\n"...)
	}
	e.elems++
	return dst
}

func (e *streamEncoder) closeUnit(dst []byte) []byte {
	if e.array {
		return dst
	}
	return append(dst, "\r\n\r\n"...)
}

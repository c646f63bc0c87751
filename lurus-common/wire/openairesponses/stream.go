package openairesponses

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// NewStreamDecoder makes a decoder for one upstream Responses stream.
func (Adapter) NewStreamDecoder() wire.EventDecoder {
	return &streamDecoder{tools: map[int]*toolState{}, byItem: map[string]int{}}
}

// streamDecoder turns Responses stream events into canonical events. Tool
// calls are numbered in the order their items appear; their arguments
// come from the delta events, or from the done events of an upstream that
// sends them whole.
type streamDecoder struct {
	started bool
	// tools maps an output_index to its tool call; byItem maps item ids
	// to output indexes (argument events name both).
	tools   map[int]*toolState
	byItem  map[string]int
	refused bool
}

type toolState struct {
	index int
	// args is set once arguments were emitted for the call.
	args bool
}

// streamEventIn is any upstream stream event; Type says which fields apply.
type streamEventIn struct {
	Type        string      `json:"type"`
	Response    *responseIn `json:"response"`
	OutputIndex int         `json:"output_index"`
	ItemID      string      `json:"item_id"`
	Item        *outputItem `json:"item"`
	Delta       string      `json:"delta"`
	Arguments   string      `json:"arguments"`
	Message     string      `json:"message"`
}

// errUnknownCall is the error of arguments for a call never announced.
var errUnknownCall = errors.New("openairesponses: function call arguments for an unknown item")

// Decode decodes the data of one SSE event.
func (d *streamDecoder) Decode(data []byte, emit func(wire.Event)) error {
	var ev streamEventIn
	if err := json.Unmarshal(data, &ev); err != nil {
		return err
	}
	if !d.started {
		d.started = true
		start := wire.Event{Kind: wire.EventStart}
		if ev.Response != nil {
			start.ID, start.Model = ev.Response.ID, ev.Response.Model
		}
		emit(start)
	}
	switch ev.Type {
	case "response.output_item.added":
		if ev.Item != nil && ev.Item.Type == "function_call" {
			d.startTool(ev.OutputIndex, ev.Item, emit)
		}
	case "response.output_text.delta":
		emit(wire.Event{Kind: wire.EventText, Text: ev.Delta})
	case "response.refusal.delta":
		d.refused = true
		emit(wire.Event{Kind: wire.EventText, Text: ev.Delta})
	case "response.reasoning_summary_text.delta", "response.reasoning_text.delta":
		emit(wire.Event{Kind: wire.EventReasoning, Text: ev.Delta})
	case "response.function_call_arguments.delta":
		t := d.tool(ev.OutputIndex, ev.ItemID)
		if t == nil {
			return errUnknownCall
		}
		if ev.Delta != "" {
			t.args = true
			emit(wire.Event{Kind: wire.EventToolArgs, Index: t.index, Text: ev.Delta})
		}
	case "response.function_call_arguments.done":
		t := d.tool(ev.OutputIndex, ev.ItemID)
		if t == nil {
			return errUnknownCall
		}
		d.wholeArgs(t, ev.Arguments, emit)
	case "response.output_item.done":
		if ev.Item != nil && ev.Item.Type == "function_call" {
			t := d.tools[ev.OutputIndex]
			if t == nil {
				t = d.startTool(ev.OutputIndex, ev.Item, emit)
			}
			d.wholeArgs(t, ev.Item.Arguments, emit)
		}
	case "response.completed", "response.incomplete", "response.failed":
		r := ev.Response
		if r == nil {
			return errors.New("openairesponses: " + ev.Type + " without a response")
		}
		if r.Usage != nil {
			emit(wire.Event{Kind: wire.EventUsage, Usage: r.Usage.canonical()})
		}
		if ev.Type == "response.failed" {
			msg := "the upstream model failed"
			if r.Error != nil && r.Error.Message != "" {
				msg = r.Error.Message
			}
			emit(wire.Event{Kind: wire.EventError, Text: msg})
			return nil
		}
		if ev.Type == "response.incomplete" {
			r.Status = "incomplete"
		}
		emit(wire.Event{Kind: wire.EventFinish, Finish: r.finish(len(d.tools) > 0, d.refused)})
	case "error":
		emit(wire.Event{Kind: wire.EventError, Text: ev.Message})
	}
	return nil
}

func (d *streamDecoder) startTool(outputIndex int, it *outputItem, emit func(wire.Event)) *toolState {
	if t := d.tools[outputIndex]; t != nil {
		return t
	}
	t := &toolState{index: len(d.tools)}
	d.tools[outputIndex] = t
	if it.ID != "" {
		d.byItem[it.ID] = outputIndex
	}
	emit(wire.Event{Kind: wire.EventToolCall, Index: t.index, ToolCallID: it.CallID, ToolName: it.Name})
	if it.Arguments != "" {
		t.args = true
		emit(wire.Event{Kind: wire.EventToolArgs, Index: t.index, Text: it.Arguments})
	}
	return t
}

// tool finds the call an argument event names, by item id first.
func (d *streamDecoder) tool(outputIndex int, itemID string) *toolState {
	if oi, ok := d.byItem[itemID]; ok {
		return d.tools[oi]
	}
	return d.tools[outputIndex]
}

// wholeArgs emits the complete arguments of a done event when no delta
// carried them.
func (d *streamDecoder) wholeArgs(t *toolState, args string, emit func(wire.Event)) {
	if !t.args && args != "" {
		t.args = true
		emit(wire.Event{Kind: wire.EventToolArgs, Index: t.index, Text: args})
	}
}

// NewStreamEncoder makes an encoder for one client stream of req.
func (a Adapter) NewStreamEncoder(req *wire.Request) wire.EventEncoder {
	return &streamEncoder{a: a, req: req, tools: map[int]*streamItem{}}
}

// streamEncoder writes canonical events as a Responses stream: the
// lifecycle events, each output item added, its deltas, and done events
// when it closes, and at the end response.completed (or .incomplete) with
// the whole response and its usage. Text and reasoning items close when
// another item opens; function calls stay open until the finish, since
// chat upstreams may interleave their argument deltas.
type streamEncoder struct {
	a    Adapter
	req  *wire.Request
	seq  int
	resp *responseOut
	// open is the text or reasoning item deltas go to, if any.
	open *streamItem
	// tools maps canonical tool indexes to their items; toolOrder lists
	// them as opened.
	tools     map[int]*streamItem
	toolOrder []*streamItem
	finish    wire.FinishReason
	usage     *usageJSON
	ended     bool
}

// streamItem is an output item being streamed.
type streamItem struct {
	kind   string // "message", "reasoning" or "function_call"
	index  int
	id     string
	callID string
	name   string
	text   strings.Builder
	closed bool
}

// streamEvent is any event the encoder writes; nil and empty fields are
// left out, so each event has exactly its type's fields.
type streamEvent struct {
	Type           string          `json:"type"`
	SequenceNumber int             `json:"sequence_number"`
	Response       *responseOut    `json:"response,omitempty"`
	ItemID         string          `json:"item_id,omitempty"`
	OutputIndex    *int            `json:"output_index,omitempty"`
	ContentIndex   *int            `json:"content_index,omitempty"`
	SummaryIndex   *int            `json:"summary_index,omitempty"`
	Item           any             `json:"item,omitempty"`
	Part           any             `json:"part,omitempty"`
	Delta          *string         `json:"delta,omitempty"`
	Text           *string         `json:"text,omitempty"`
	Name           string          `json:"name,omitempty"`
	Arguments      *string         `json:"arguments,omitempty"`
	Logprobs       json.RawMessage `json:"logprobs,omitempty"`
	Code           string          `json:"code,omitempty"`
	Message        *string         `json:"message,omitempty"`
	Param          json.RawMessage `json:"param,omitempty"`
}

var (
	zero         = 0
	emptyJSONArr = json.RawMessage("[]")
	jsonNull     = json.RawMessage("null")
)

// write appends ev as one SSE event ("event:" line and data).
func (e *streamEncoder) write(dst []byte, ev *streamEvent) []byte {
	ev.SequenceNumber = e.seq
	e.seq++
	data, err := marshal(ev)
	if err != nil {
		// Every field is a plain value; this cannot fail.
		panic(err)
	}
	dst = append(dst, "event: "...)
	dst = append(dst, ev.Type...)
	dst = append(dst, "\ndata: "...)
	dst = append(dst, data...)
	return append(dst, "\n\n"...)
}

// Encode appends the client events for ev.
func (e *streamEncoder) Encode(dst []byte, ev wire.Event) []byte {
	if e.ended {
		return dst
	}
	if e.resp == nil {
		dst = e.start(dst, ev.ID)
		if ev.Kind == wire.EventStart {
			return dst
		}
	}
	switch ev.Kind {
	case wire.EventText, wire.EventReasoning:
		if ev.Text == "" {
			return dst
		}
		kind := "message"
		if ev.Kind == wire.EventReasoning {
			kind = "reasoning"
		}
		if e.open != nil && e.open.kind != kind {
			dst = e.close(dst, e.open)
		}
		if e.open == nil {
			dst = e.openItem(dst, &streamItem{kind: kind})
		}
		dst = e.delta(dst, e.open, ev.Text)
	case wire.EventToolCall:
		if e.tools[ev.Index] == nil {
			dst = e.openItem(dst, &streamItem{kind: "function_call", callID: ev.ToolCallID, name: ev.ToolName})
			e.tools[ev.Index] = e.toolOrder[len(e.toolOrder)-1]
		}
	case wire.EventToolArgs:
		t := e.tools[ev.Index]
		if t == nil {
			dst = e.openItem(dst, &streamItem{kind: "function_call"})
			t = e.toolOrder[len(e.toolOrder)-1]
			e.tools[ev.Index] = t
		}
		if ev.Text != "" && !t.closed {
			dst = e.delta(dst, t, ev.Text)
		}
	case wire.EventUsage:
		e.usage = usageOf(ev.Usage)
	case wire.EventFinish:
		e.finish = ev.Finish
		dst = e.closeAll(dst)
	case wire.EventError:
		e.ended = true
		msg := ev.Text
		dst = e.write(dst, &streamEvent{Type: "error", Code: string(apperr.ReasonUpstreamError), Message: &msg, Param: jsonNull})
	}
	return dst
}

// End closes what is open and appends the terminal event with the whole
// response: response.completed, or response.incomplete at the cap or the
// content filter.
func (e *streamEncoder) End(dst []byte) []byte {
	if e.ended {
		return dst
	}
	if e.resp == nil {
		dst = e.start(dst, "")
	}
	dst = e.closeAll(dst)
	e.ended = true
	f := e.finish
	if f == "" {
		f = wire.FinishStop
	}
	e.resp.finishWith(f, "the upstream model failed")
	e.resp.Usage = e.usage
	return e.write(dst, &streamEvent{Type: e.resp.terminalEvent(), Response: e.resp})
}

func (e *streamEncoder) start(dst []byte, id string) []byte {
	e.resp = newResponseOut(responseID(id), e.a.now(), e.req)
	dst = e.write(dst, &streamEvent{Type: "response.created", Response: e.resp})
	return e.write(dst, &streamEvent{Type: "response.in_progress", Response: e.resp})
}

// openItem adds it to the output and announces it (and, for text and
// reasoning, its first part).
func (e *streamEncoder) openItem(dst []byte, it *streamItem) []byte {
	if e.open != nil {
		dst = e.close(dst, e.open)
	}
	it.index = len(e.resp.Output)
	it.id = itemID(idPrefix(it.kind), e.resp.ID, it.index)
	if it.kind == "function_call" {
		if it.callID == "" {
			it.callID = "call_" + strings.TrimPrefix(e.resp.ID, "resp_") + "_" + strconv.Itoa(it.index)
		}
		e.toolOrder = append(e.toolOrder, it)
	} else {
		e.open = it
	}
	e.resp.Output = append(e.resp.Output, nil)
	dst = e.write(dst, &streamEvent{Type: "response.output_item.added", OutputIndex: &it.index, Item: it.snapshot("in_progress")})
	switch it.kind {
	case "message":
		dst = e.write(dst, &streamEvent{Type: "response.content_part.added", ItemID: it.id, OutputIndex: &it.index,
			ContentIndex: &zero, Part: outputText{Type: "output_text", Annotations: []any{}}})
	case "reasoning":
		dst = e.write(dst, &streamEvent{Type: "response.reasoning_summary_part.added", ItemID: it.id, OutputIndex: &it.index,
			SummaryIndex: &zero, Part: summaryPart{Type: "summary_text"}})
	}
	return dst
}

// idPrefix is the prefix OpenAI gives the ids of items of kind.
func idPrefix(kind string) string {
	switch kind {
	case "message":
		return "msg"
	case "reasoning":
		return "rs"
	}
	return "fc"
}

func (e *streamEncoder) delta(dst []byte, it *streamItem, text string) []byte {
	it.text.WriteString(text)
	ev := &streamEvent{ItemID: it.id, OutputIndex: &it.index, Delta: &text}
	switch it.kind {
	case "message":
		ev.Type, ev.ContentIndex, ev.Logprobs = "response.output_text.delta", &zero, emptyJSONArr
	case "reasoning":
		ev.Type, ev.SummaryIndex = "response.reasoning_summary_text.delta", &zero
	default:
		ev.Type = "response.function_call_arguments.delta"
	}
	return e.write(dst, ev)
}

// close ends item it: its done events, and its final form in the output.
func (e *streamEncoder) close(dst []byte, it *streamItem) []byte {
	if it.closed {
		return dst
	}
	it.closed = true
	if e.open == it {
		e.open = nil
	}
	text := it.text.String()
	switch it.kind {
	case "message":
		dst = e.write(dst, &streamEvent{Type: "response.output_text.done", ItemID: it.id, OutputIndex: &it.index,
			ContentIndex: &zero, Text: &text, Logprobs: emptyJSONArr})
		dst = e.write(dst, &streamEvent{Type: "response.content_part.done", ItemID: it.id, OutputIndex: &it.index,
			ContentIndex: &zero, Part: outputText{Type: "output_text", Text: text, Annotations: []any{}}})
	case "reasoning":
		dst = e.write(dst, &streamEvent{Type: "response.reasoning_summary_text.done", ItemID: it.id, OutputIndex: &it.index,
			SummaryIndex: &zero, Text: &text})
		dst = e.write(dst, &streamEvent{Type: "response.reasoning_summary_part.done", ItemID: it.id, OutputIndex: &it.index,
			SummaryIndex: &zero, Part: summaryPart{Type: "summary_text", Text: text}})
	default:
		dst = e.write(dst, &streamEvent{Type: "response.function_call_arguments.done", ItemID: it.id, OutputIndex: &it.index,
			Name: it.name, Arguments: &text})
	}
	final := it.snapshot(itemStatus(e.finish))
	e.resp.Output[it.index] = final
	return e.write(dst, &streamEvent{Type: "response.output_item.done", OutputIndex: &it.index, Item: final})
}

// closeAll closes the open text or reasoning item and every tool call.
func (e *streamEncoder) closeAll(dst []byte) []byte {
	if e.open != nil {
		dst = e.close(dst, e.open)
	}
	for _, t := range e.toolOrder {
		dst = e.close(dst, t)
	}
	return dst
}

// itemStatus is the status of an item that ended with the answer's finish
// f: incomplete when the answer was cut.
func itemStatus(f wire.FinishReason) string {
	if f == wire.FinishLength || f == wire.FinishContentFilter {
		return "incomplete"
	}
	return "completed"
}

// snapshot is the item as output_item.added (status in_progress) or as
// output_item.done and the final response show it.
func (it *streamItem) snapshot(status string) any {
	done := status != "in_progress"
	switch it.kind {
	case "message":
		m := &messageOut{ID: it.id, Type: "message", Status: status, Role: "assistant", Content: []outputText{}}
		if done {
			m.Content = append(m.Content, outputText{Type: "output_text", Text: it.text.String(), Annotations: []any{}})
		}
		return m
	case "reasoning":
		r := &reasoningOut{ID: it.id, Type: "reasoning", Summary: []summaryPart{}}
		if done {
			r.Summary = append(r.Summary, summaryPart{Type: "summary_text", Text: it.text.String()})
		}
		return r
	}
	args := ""
	if done {
		args = it.text.String()
	}
	return &functionCallOut{ID: it.id, Type: "function_call", Status: status, CallID: it.callID, Name: it.name, Arguments: args}
}

package mockupstream

import (
	"net/http"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/jsonstr"
)

// OpenAI Responses API: POST /v1/responses, JSON or a stream of typed SSE
// events ("event: <type>\ndata: {...}\n\n") from response.created to
// response.completed, which carries the usage. Replies are text, or a
// function_call item when a tool call is forced (Settings.ToolCall).

// appendResponseUsage appends the Responses usage object.
func appendResponseUsage(b []byte, u usage) []byte {
	b = append(b, `{"input_tokens":`...)
	b = appendInt(b, u.prompt)
	b = append(b, `,"input_tokens_details":{"cached_tokens":`...)
	b = appendInt(b, u.cached)
	if u.cacheWrite > 0 {
		b = append(b, `,"cache_write_tokens":`...)
		b = appendInt(b, u.cacheWrite)
	}
	b = append(b, `},"output_tokens":`...)
	b = appendInt(b, u.completion)
	b = append(b, `,"output_tokens_details":{"reasoning_tokens":`...)
	b = appendInt(b, u.reasoning)
	b = append(b, `},"total_tokens":`...)
	b = appendInt(b, u.prompt+u.completion)
	return append(b, '}')
}

// appendResponseMessage appends the output message item holding the text
// of n chunks (completed) or nothing yet (in progress).
func (ex *exchange) appendResponseMessage(b []byte, n int, done bool) []byte {
	b = append(b, `{"id":"msg_mock`...)
	b = appendInt(b, int(ex.seq))
	if !done {
		return append(b, `","type":"message","status":"in_progress","content":[],"role":"assistant"}`...)
	}
	b = append(b, `","type":"message","status":"completed","content":[`...)
	b = appendOutputTextPart(b, n)
	return append(b, `],"role":"assistant"}`...)
}

// appendResponseFunctionCall appends the function_call output item, with
// its arguments (completed) or without them yet (in progress).
func (ex *exchange) appendResponseFunctionCall(b []byte, info *requestInfo, n int, done bool) []byte {
	b = append(b, `{"id":"fc_mock`...)
	b = appendInt(b, int(ex.seq))
	b = append(b, `","type":"function_call","status":"`...)
	if done {
		b = append(b, `completed`...)
	} else {
		b = append(b, `in_progress`...)
	}
	b = append(b, `","arguments":`...)
	if done {
		b = info.toolArgs(n).appendQuoted(b)
	} else {
		b = append(b, `""`...)
	}
	b = append(b, `,"call_id":"call_mock`...)
	b = appendInt(b, int(ex.seq))
	b = append(b, `","name":`...)
	b = jsonstr.Append(b, info.tool)
	return append(b, '}')
}

// appendResponseOutput appends the one output item of the reply.
func (ex *exchange) appendResponseOutput(b []byte, info *requestInfo, n int, done bool) []byte {
	if info.tool != "" {
		return ex.appendResponseFunctionCall(b, info, n, done)
	}
	return ex.appendResponseMessage(b, n, done)
}

func appendOutputTextPart(b []byte, n int) []byte {
	b = append(b, `{"type":"output_text","annotations":[],"logprobs":[],"text":"`...)
	b = appendReplyText(b, n)
	return append(b, `"}`...)
}

// appendResponse appends the response object; done selects the completed
// form with its output and usage over the in-progress form.
func (ex *exchange) appendResponse(b []byte, info *requestInfo, n int, u usage, done bool) []byte {
	b = append(b, `{"id":"resp_mock`...)
	b = appendInt(b, int(ex.seq))
	b = append(b, `","object":"response","created_at":`...)
	created := appendInt(nil, int(ex.now.Unix()))
	b = append(b, created...)
	if done {
		b = append(b, `,"status":"completed","completed_at":`...)
		b = append(b, created...)
	} else {
		b = append(b, `,"status":"in_progress","completed_at":null`...)
	}
	b = append(b, `,"background":false,"error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":`...)
	b = jsonstr.Append(b, info.model)
	b = append(b, `,"output":[`...)
	if done {
		b = ex.appendResponseOutput(b, info, n, true)
	}
	b = append(b, `],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"store":false,"temperature":1.0,"text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":`...)
	if done && !ex.plan.noUsage {
		b = appendResponseUsage(b, u)
	} else {
		b = append(b, "null"...)
	}
	return append(b, `,"user":null,"metadata":{}}`...)
}

func (ex *exchange) openAIResponses(info requestInfo) error {
	n := ex.plan.chunks
	u := ex.plan.usageFor(info.promptTokens, n)
	if info.stream {
		return ex.openAIResponsesStream(info, n, u)
	}
	b := ex.appendResponse(ex.buf[:0], &info, n, u, true)
	ex.buf = b
	return ex.writeJSON(http.StatusOK, contentTypeJSON, b)
}

// responsesEvent appends the start of one event up to and including the
// sequence number: "event: <typ>\ndata: {"type":"<typ>","sequence_number":<seq>".
func responsesEvent(b []byte, typ string, seq int) []byte {
	b = append(b, "event: "...)
	b = append(b, typ...)
	b = append(b, "\ndata: {\"type\":\""...)
	b = append(b, typ...)
	b = append(b, `","sequence_number":`...)
	return appendInt(b, seq)
}

// responsesStream writes the typed events of one Responses stream,
// numbering them from 0.
type responsesStream struct {
	ex  *exchange
	b   []byte
	seq int
}

// event starts an event of type typ in the buffer, up to its sequence number.
func (st *responsesStream) event(typ string) { st.b = responsesEvent(st.b[:0], typ, st.seq) }

// emit closes the event and sends it, as a content chunk (subject to the
// plan's gap, cut and hang) or a framing event.
func (st *responsesStream) emit(content bool) error {
	st.b = append(st.b, "}\n\n"...)
	st.seq++
	if content {
		return st.ex.chunk(st.b)
	}
	return st.ex.frame(st.b)
}

// itemRef appends the reference to the output item (and, for a message,
// its content part) that a delta or done event is about.
func (st *responsesStream) itemRef(function bool) {
	if function {
		st.b = append(st.b, `,"item_id":"fc_mock`...)
	} else {
		st.b = append(st.b, `,"item_id":"msg_mock`...)
	}
	st.b = appendInt(st.b, int(st.ex.seq))
	st.b = append(st.b, `","output_index":0`...)
	if !function {
		st.b = append(st.b, `,"content_index":0`...)
	}
}

func (ex *exchange) openAIResponsesStream(info requestInfo, n int, u usage) error {
	if err := ex.startStream(contentTypeSSE); err != nil {
		return err
	}
	st := &responsesStream{ex: ex, b: ex.buf[:0]}
	defer func() { ex.buf = st.b[:0] }()

	for _, typ := range [...]string{"response.created", "response.in_progress"} {
		st.event(typ)
		st.b = append(st.b, `,"response":`...)
		st.b = ex.appendResponse(st.b, &info, n, u, false)
		if err := st.emit(false); err != nil {
			return err
		}
	}
	st.event("response.output_item.added")
	st.b = append(st.b, `,"output_index":0,"item":`...)
	st.b = ex.appendResponseOutput(st.b, &info, n, false)
	if err := st.emit(false); err != nil {
		return err
	}
	var err error
	if info.tool != "" {
		err = st.functionCallEvents(&info, n)
	} else {
		err = st.textEvents(n)
	}
	if err != nil {
		return err
	}
	st.event("response.output_item.done")
	st.b = append(st.b, `,"output_index":0,"item":`...)
	st.b = ex.appendResponseOutput(st.b, &info, n, true)
	if err := st.emit(false); err != nil {
		return err
	}
	st.event("response.completed")
	st.b = append(st.b, `,"response":`...)
	st.b = ex.appendResponse(st.b, &info, n, u, true)
	return st.emit(false)
}

// functionCallEvents writes the argument deltas of a function_call item
// and their done event.
func (st *responsesStream) functionCallEvents(info *requestInfo, n int) error {
	args := info.toolArgs(n)
	for i := range args.pieces() {
		st.event("response.function_call_arguments.delta")
		st.itemRef(true)
		st.b = append(st.b, `,"delta":`...)
		st.b = args.appendQuotedPiece(st.b, i)
		if err := st.emit(true); err != nil {
			return err
		}
	}
	if err := st.ex.endContent(); err != nil {
		return err
	}
	st.event("response.function_call_arguments.done")
	st.itemRef(true)
	st.b = append(st.b, `,"name":`...)
	st.b = jsonstr.Append(st.b, info.tool)
	st.b = append(st.b, `,"arguments":`...)
	st.b = args.appendQuoted(st.b)
	return st.emit(false)
}

// textEvents writes the content part of a message item: its start, the
// text deltas, the text's done event and the part's.
func (st *responsesStream) textEvents(n int) error {
	st.event("response.content_part.added")
	st.itemRef(false)
	st.b = append(st.b, `,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":""}`...)
	if err := st.emit(false); err != nil {
		return err
	}
	for i := range n {
		st.event("response.output_text.delta")
		st.itemRef(false)
		st.b = append(st.b, `,"delta":"`...)
		st.b = appendChunkText(st.b, i)
		st.b = append(st.b, `","logprobs":[]`...)
		if err := st.emit(true); err != nil {
			return err
		}
	}
	if err := st.ex.endContent(); err != nil {
		return err
	}
	st.event("response.output_text.done")
	st.itemRef(false)
	st.b = append(st.b, `,"text":"`...)
	st.b = appendReplyText(st.b, n)
	st.b = append(st.b, `","logprobs":[]`...)
	if err := st.emit(false); err != nil {
		return err
	}
	st.event("response.content_part.done")
	st.itemRef(false)
	st.b = append(st.b, `,"part":`...)
	st.b = appendOutputTextPart(st.b, n)
	return st.emit(false)
}

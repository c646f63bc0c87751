package mockupstream

import "net/http"

// OpenAI Responses API: POST /v1/responses, JSON or a stream of typed SSE
// events ("event: <type>\ndata: {...}\n\n") from response.created to
// response.completed, which carries the usage. Replies are always text.

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

func appendOutputTextPart(b []byte, n int) []byte {
	b = append(b, `{"type":"output_text","annotations":[],"logprobs":[],"text":"`...)
	b = appendReplyText(b, n)
	return append(b, `"}`...)
}

// appendResponse appends the response object; done selects the completed
// form with its output and usage over the in-progress form.
func (ex *exchange) appendResponse(b []byte, model string, n int, u usage, done bool) []byte {
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
	b = appendJSONString(b, model)
	b = append(b, `,"output":[`...)
	if done {
		b = ex.appendResponseMessage(b, n, true)
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
	b := ex.appendResponse(ex.buf[:0], info.model, n, u, true)
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

func (ex *exchange) openAIResponsesStream(info requestInfo, n int, u usage) error {
	if err := ex.startStream(contentTypeSSE); err != nil {
		return err
	}
	b := ex.buf[:0]
	defer func() { ex.buf = b[:0] }()
	seq := 0
	emit := func(content bool) error {
		b = append(b, "}\n\n"...)
		seq++
		if content {
			return ex.chunk(b)
		}
		return ex.frame(b)
	}
	itemRef := func(b []byte) []byte {
		b = append(b, `,"item_id":"msg_mock`...)
		b = appendInt(b, int(ex.seq))
		return append(b, `","output_index":0,"content_index":0`...)
	}

	for _, typ := range [...]string{"response.created", "response.in_progress"} {
		b = responsesEvent(b[:0], typ, seq)
		b = append(b, `,"response":`...)
		b = ex.appendResponse(b, info.model, n, u, false)
		if err := emit(false); err != nil {
			return err
		}
	}
	b = responsesEvent(b[:0], "response.output_item.added", seq)
	b = append(b, `,"output_index":0,"item":`...)
	b = ex.appendResponseMessage(b, n, false)
	if err := emit(false); err != nil {
		return err
	}
	b = responsesEvent(b[:0], "response.content_part.added", seq)
	b = itemRef(b)
	b = append(b, `,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":""}`...)
	if err := emit(false); err != nil {
		return err
	}
	for i := range n {
		b = responsesEvent(b[:0], "response.output_text.delta", seq)
		b = itemRef(b)
		b = append(b, `,"delta":"`...)
		b = appendChunkText(b, i)
		b = append(b, `","logprobs":[]`...)
		if err := emit(true); err != nil {
			return err
		}
	}
	if err := ex.endContent(); err != nil {
		return err
	}
	b = responsesEvent(b[:0], "response.output_text.done", seq)
	b = itemRef(b)
	b = append(b, `,"text":"`...)
	b = appendReplyText(b, n)
	b = append(b, `","logprobs":[]`...)
	if err := emit(false); err != nil {
		return err
	}
	b = responsesEvent(b[:0], "response.content_part.done", seq)
	b = itemRef(b)
	b = append(b, `,"part":`...)
	b = appendOutputTextPart(b, n)
	if err := emit(false); err != nil {
		return err
	}
	b = responsesEvent(b[:0], "response.output_item.done", seq)
	b = append(b, `,"output_index":0,"item":`...)
	b = ex.appendResponseMessage(b, n, true)
	if err := emit(false); err != nil {
		return err
	}
	b = responsesEvent(b[:0], "response.completed", seq)
	b = append(b, `,"response":`...)
	b = ex.appendResponse(b, info.model, n, u, true)
	return emit(false)
}

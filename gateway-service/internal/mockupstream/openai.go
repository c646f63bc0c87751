package mockupstream

import (
	"net/http"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/jsonstr"
)

// OpenAI wire format: chat completions, legacy completions and embeddings,
// JSON and SSE ("data: {...}\n\n" events ending with "data: [DONE]\n\n").
// Azure OpenAI uses the same bodies under /openai/deployments/{deployment}.

const sseDone = "data: [DONE]\n\n"

// appendOpenAIUsage appends the usage object shared by chat and completions.
// cache_write_tokens is only sent when set, as the API does.
func appendOpenAIUsage(b []byte, u usage) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = appendInt(b, u.prompt)
	b = append(b, `,"completion_tokens":`...)
	b = appendInt(b, u.completion)
	b = append(b, `,"total_tokens":`...)
	b = appendInt(b, u.prompt+u.completion)
	b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
	b = appendInt(b, u.cached)
	if u.cacheWrite > 0 {
		b = append(b, `,"cache_write_tokens":`...)
		b = appendInt(b, u.cacheWrite)
	}
	b = append(b, `,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":`...)
	b = appendInt(b, u.reasoning)
	return append(b, `,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`...)
}

// appendIDHead appends `{"id":"<prefix><seq>","object":"<object>","created":<unix>,"model":<model>`.
func (ex *exchange) appendIDHead(b []byte, idPrefix, object, model string) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, idPrefix...)
	b = appendInt(b, int(ex.seq))
	b = append(b, `","object":"`...)
	b = append(b, object...)
	b = append(b, `","created":`...)
	b = appendInt(b, int(ex.now.Unix()))
	b = append(b, `,"model":`...)
	return jsonstr.Append(b, model)
}

func (ex *exchange) openAIChat(info requestInfo) error {
	n := ex.plan.chunks
	u := ex.plan.usageFor(info.promptTokens, n)
	if info.stream {
		return ex.openAIChatStream(info, n, u)
	}
	b := ex.appendIDHead(ex.buf[:0], "chatcmpl-mock", "chat.completion", info.model)
	b = append(b, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	finish := "stop"
	if info.tool != "" {
		finish = "tool_calls"
		b = append(b, `null,"tool_calls":[{"id":"call_mock`...)
		b = appendInt(b, int(ex.seq))
		b = append(b, `","type":"function","function":{"name":`...)
		b = jsonstr.Append(b, info.tool)
		b = append(b, `,"arguments":`...)
		b = info.toolArgs(n).appendQuoted(b)
		b = append(b, `}}]`...)
	} else {
		b = append(b, '"')
		b = appendReplyText(b, n)
		b = append(b, '"')
	}
	b = append(b, `,"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"`...)
	b = append(b, finish...)
	b = append(b, `"}]`...)
	if !ex.plan.noUsage {
		b = append(b, `,"usage":`...)
		b = appendOpenAIUsage(b, u)
	}
	b = append(b, `,"service_tier":"default","system_fingerprint":"fp_mock"}`...)
	ex.buf = b
	return ex.writeJSON(http.StatusOK, contentTypeJSON, b)
}

// openAIChatStream streams a chat reply as the API does: a first chunk with
// the role (and, for a tool call, its id and name), one chunk per content
// piece, a chunk with finish_reason, then — when the request set
// stream_options.include_usage — a chunk with "choices":[] and the usage,
// and [DONE]. With include_usage every other chunk carries "usage":null.
func (ex *exchange) openAIChatStream(info requestInfo, n int, u usage) error {
	if err := ex.startStream(contentTypeSSE); err != nil {
		return err
	}
	b := append(ex.buf[:0], "data: "...)
	b = ex.appendIDHead(b, "chatcmpl-mock", "chat.completion.chunk", info.model)
	b = append(b, `,"service_tier":"default","system_fingerprint":"fp_mock","choices":[`...)
	head := len(b)
	tail := "]}\n\n"
	if info.includeUsage {
		tail = `],"usage":null}` + "\n\n"
	}
	defer func() { ex.buf = b[:0] }()

	b = b[:head]
	if info.tool != "" {
		b = append(b, `{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_mock`...)
		b = appendInt(b, int(ex.seq))
		b = append(b, `","type":"function","function":{"name":`...)
		b = jsonstr.Append(b, info.tool)
		b = append(b, `,"arguments":""}}],"refusal":null},"logprobs":null,"finish_reason":null}`...)
	} else {
		b = append(b, `{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}`...)
	}
	b = append(b, tail...)
	if err := ex.frame(b); err != nil {
		return err
	}

	finish := "stop"
	if info.tool != "" {
		finish = "tool_calls"
		args := info.toolArgs(n)
		for i := range args.pieces() {
			b = append(b[:head], `{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":`...)
			b = args.appendQuotedPiece(b, i)
			b = append(b, `}}]},"logprobs":null,"finish_reason":null}`...)
			b = append(b, tail...)
			if err := ex.chunk(b); err != nil {
				return err
			}
		}
	} else {
		for i := range n {
			b = append(b[:head], `{"index":0,"delta":{"content":"`...)
			b = appendChunkText(b, i)
			b = append(b, `"},"logprobs":null,"finish_reason":null}`...)
			b = append(b, tail...)
			if err := ex.chunk(b); err != nil {
				return err
			}
		}
	}
	if err := ex.endContent(); err != nil {
		return err
	}

	b = append(b[:head], `{"index":0,"delta":{},"logprobs":null,"finish_reason":"`...)
	b = append(b, finish...)
	b = append(b, `"}`...)
	b = append(b, tail...)
	if err := ex.frame(b); err != nil {
		return err
	}
	return ex.openAIStreamEnd(b[:head], info.includeUsage, u)
}

// openAIStreamEnd writes the usage chunk (head is the chunk prefix up to
// the choices array) when asked for, then [DONE].
func (ex *exchange) openAIStreamEnd(head []byte, includeUsage bool, u usage) error {
	if includeUsage && !ex.plan.noUsage {
		b := append(head, `],"usage":`...)
		b = appendOpenAIUsage(b, u)
		b = append(b, "}\n\n"...)
		if err := ex.frame(b); err != nil {
			return err
		}
	}
	return ex.frame(append(head[:0], sseDone...))
}

func (ex *exchange) openAICompletion(info requestInfo) error {
	n := ex.plan.chunks
	u := ex.plan.usageFor(info.promptTokens, n)
	if info.stream {
		return ex.openAICompletionStream(info, n, u)
	}
	b := ex.appendIDHead(ex.buf[:0], "cmpl-mock", "text_completion", info.model)
	b = append(b, `,"choices":[{"text":"`...)
	b = appendReplyText(b, n)
	b = append(b, `","index":0,"logprobs":null,"finish_reason":"stop"}]`...)
	if !ex.plan.noUsage {
		b = append(b, `,"usage":`...)
		b = appendOpenAIUsage(b, u)
	}
	b = append(b, `,"system_fingerprint":"fp_mock"}`...)
	ex.buf = b
	return ex.writeJSON(http.StatusOK, contentTypeJSON, b)
}

// openAICompletionStream streams a legacy completion: one chunk per piece,
// a chunk with an empty text and finish_reason, the usage chunk when asked
// for, and [DONE].
func (ex *exchange) openAICompletionStream(info requestInfo, n int, u usage) error {
	if err := ex.startStream(contentTypeSSE); err != nil {
		return err
	}
	b := append(ex.buf[:0], "data: "...)
	b = ex.appendIDHead(b, "cmpl-mock", "text_completion", info.model)
	b = append(b, `,"system_fingerprint":"fp_mock","choices":[`...)
	head := len(b)
	tail := "]}\n\n"
	if info.includeUsage {
		tail = `],"usage":null}` + "\n\n"
	}
	defer func() { ex.buf = b[:0] }()
	for i := range n {
		b = append(b[:head], `{"text":"`...)
		b = appendChunkText(b, i)
		b = append(b, `","index":0,"logprobs":null,"finish_reason":null}`...)
		b = append(b, tail...)
		if err := ex.chunk(b); err != nil {
			return err
		}
	}
	if err := ex.endContent(); err != nil {
		return err
	}
	b = append(b[:head], `{"text":"","index":0,"logprobs":null,"finish_reason":"stop"}`...)
	b = append(b, tail...)
	if err := ex.frame(b); err != nil {
		return err
	}
	return ex.openAIStreamEnd(b[:head], info.includeUsage, u)
}

// openAIEmbeddings answers one vector per input, as floats or, for
// encoding_format "base64", as base64 of little-endian float32.
func (ex *exchange) openAIEmbeddings(info requestInfo) error {
	dims := embeddingDims(info.dims)
	b := append(ex.buf[:0], `{"object":"list","data":[`...)
	for j := range info.embeddings {
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"object":"embedding","index":`...)
		b = appendInt(b, j)
		b = append(b, `,"embedding":`...)
		if info.base64 {
			b = appendEmbeddingBase64(b, j, dims)
		} else {
			b = appendEmbeddingFloats(b, j, dims)
		}
		b = append(b, '}')
	}
	b = append(b, `],"model":`...)
	b = jsonstr.Append(b, info.model)
	if !ex.plan.noUsage {
		p := ex.plan.usageFor(info.promptTokens, 0).prompt
		b = append(b, `,"usage":{"prompt_tokens":`...)
		b = appendInt(b, p)
		b = append(b, `,"total_tokens":`...)
		b = appendInt(b, p)
		b = append(b, '}')
	}
	b = append(b, '}')
	ex.buf = b
	return ex.writeJSON(http.StatusOK, contentTypeJSON, b)
}

func embeddingDims(asked int) int {
	if asked <= 0 || asked > maxEmbeddingDims {
		return DefaultEmbeddingDims
	}
	return asked
}

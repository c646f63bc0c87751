package mockupstream

import (
	"net/http"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/jsonstr"
)

// Gemini API: POST /v1beta/models/{model}:{action} for generateContent,
// streamGenerateContent (?alt=sse: "data: {...}\r\n\r\n" events; without
// it a JSON array streamed element by element), countTokens, embedContent
// and batchEmbedContents. Proto3 JSON: zero counts other than the prompt,
// candidates and total are left out, as the API does.

// appendGeminiUsage appends usageMetadata. The partial form, on all but
// the last streamed chunk, knows only the prompt.
func appendGeminiUsage(b []byte, u usage, final bool) []byte {
	b = append(b, `{"promptTokenCount":`...)
	b = appendInt(b, u.prompt)
	if final {
		b = append(b, `,"candidatesTokenCount":`...)
		b = appendInt(b, u.completion)
		b = append(b, `,"totalTokenCount":`...)
		b = appendInt(b, u.prompt+u.completion+u.reasoning)
	} else {
		b = append(b, `,"totalTokenCount":`...)
		b = appendInt(b, u.prompt)
	}
	b = appendGeminiPromptDetails(b, u)
	if final && u.reasoning > 0 {
		b = append(b, `,"thoughtsTokenCount":`...)
		b = appendInt(b, u.reasoning)
	}
	return append(b, '}')
}

// appendGeminiPromptDetails appends the cached count (when > 0) and the
// prompt's modality breakdown, shared by usageMetadata and countTokens.
func appendGeminiPromptDetails(b []byte, u usage) []byte {
	if u.cached > 0 {
		b = append(b, `,"cachedContentTokenCount":`...)
		b = appendInt(b, u.cached)
	}
	b = append(b, `,"promptTokensDetails":[{"modality":"TEXT","tokenCount":`...)
	b = appendInt(b, u.prompt)
	return append(b, `}]`...)
}

// appendGeminiFunctionCall appends a functionCall part with the arguments
// of a reply of n chunks.
func appendGeminiFunctionCall(b []byte, info *requestInfo, n int) []byte {
	b = append(b, `{"functionCall":{"name":`...)
	b = jsonstr.Append(b, info.tool)
	b = append(b, `,"args":`...)
	b = info.toolArgs(n).appendObject(b)
	return append(b, `}}`...)
}

// appendGeminiResponse appends one GenerateContentResponse. parts is the
// raw JSON of the parts array's elements; final adds the finish reason and
// the full usage.
func (ex *exchange) appendGeminiResponse(b []byte, model string, parts func([]byte) []byte, u usage, final bool) []byte {
	b = append(b, `{"candidates":[{"content":{"parts":[`...)
	b = parts(b)
	b = append(b, `],"role":"model"}`...)
	if final {
		b = append(b, `,"finishReason":"STOP"`...)
	}
	b = append(b, `,"index":0}]`...)
	if !ex.plan.noUsage {
		b = append(b, `,"usageMetadata":`...)
		b = appendGeminiUsage(b, u, final)
	}
	b = append(b, `,"modelVersion":`...)
	b = jsonstr.Append(b, model)
	b = append(b, `,"responseId":"mock`...)
	b = appendInt(b, int(ex.seq))
	return append(b, `"}`...)
}

func (ex *exchange) geminiGenerate(info requestInfo) error {
	n := ex.plan.chunks
	u := ex.plan.usageFor(info.promptTokens, n)
	b := ex.appendGeminiResponse(ex.buf[:0], info.model, func(b []byte) []byte {
		if info.tool != "" {
			return appendGeminiFunctionCall(b, &info, n)
		}
		b = append(b, `{"text":"`...)
		b = appendReplyText(b, n)
		return append(b, `"}`...)
	}, u, true)
	ex.buf = b
	return ex.writeJSON(http.StatusOK, contentTypeGeminiJSON, b)
}

// geminiStream streams one response per chunk, then a last response with
// an empty text part, finishReason STOP and the full usage. A function call
// is not split: it goes out whole in the last response.
func (ex *exchange) geminiStream(info requestInfo, sse bool) error {
	n := ex.plan.chunks
	u := ex.plan.usageFor(info.promptTokens, n)
	ct := contentTypeGeminiJSON
	if sse {
		ct = contentTypeGeminiSSE
	}
	if err := ex.startStream(ct); err != nil {
		return err
	}
	b := ex.buf[:0]
	defer func() { ex.buf = b[:0] }()
	first := true
	open := func() {
		switch {
		case sse:
			b = append(b[:0], "data: "...)
		case first:
			b = append(b[:0], '[')
		default:
			b = append(b[:0], "\n,\r\n"...)
		}
		first = false
	}
	closeEvent := func() {
		if sse {
			b = append(b, "\r\n\r\n"...)
		}
	}

	if info.tool != "" {
		open()
		b = ex.appendGeminiResponse(b, info.model, func(b []byte) []byte {
			return appendGeminiFunctionCall(b, &info, n)
		}, u, true)
		closeEvent()
		if err := ex.chunk(b); err != nil {
			return err
		}
		if err := ex.endContent(); err != nil {
			return err
		}
	} else {
		for i := range n {
			open()
			b = ex.appendGeminiResponse(b, info.model, func(b []byte) []byte {
				b = append(b, `{"text":"`...)
				b = appendChunkText(b, i)
				return append(b, `"}`...)
			}, u, false)
			closeEvent()
			if err := ex.chunk(b); err != nil {
				return err
			}
		}
		if err := ex.endContent(); err != nil {
			return err
		}
		open()
		b = ex.appendGeminiResponse(b, info.model, func(b []byte) []byte {
			return append(b, `{"text":""}`...)
		}, u, true)
		closeEvent()
		if err := ex.frame(b); err != nil {
			return err
		}
	}
	if !sse {
		return ex.frame(append(b[:0], "\n]"...))
	}
	return nil
}

func (ex *exchange) geminiCountTokens(info requestInfo) error {
	u := ex.plan.usageFor(info.promptTokens, 0)
	b := append(ex.buf[:0], `{"totalTokens":`...)
	b = appendInt(b, u.prompt)
	b = appendGeminiPromptDetails(b, u)
	b = append(b, '}')
	ex.buf = b
	return ex.writeJSON(http.StatusOK, contentTypeGeminiJSON, b)
}

// geminiEmbed answers embedContent ({"embedding":{"values":[…]}}) and
// batchEmbedContents ({"embeddings":[{"values":[…]},…]}, one per request).
func (ex *exchange) geminiEmbed(info requestInfo, batch bool) error {
	dims := embeddingDims(info.dims)
	var b []byte
	if batch {
		b = append(ex.buf[:0], `{"embeddings":[`...)
		for j := range info.embeddings {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"values":`...)
			b = appendEmbeddingFloats(b, j, dims)
			b = append(b, '}')
		}
		b = append(b, `]}`...)
	} else {
		b = append(ex.buf[:0], `{"embedding":{"values":`...)
		b = appendEmbeddingFloats(b, 0, dims)
		b = append(b, `}}`...)
	}
	ex.buf = b
	return ex.writeJSON(http.StatusOK, contentTypeGeminiJSON, b)
}

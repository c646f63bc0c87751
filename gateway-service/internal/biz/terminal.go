package biz

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// terminalState is what a StreamEditor remembers of the delivered stream
// to end it, when cut, the way the upstream itself would have: the ids
// and model of OpenAI chunks, the Responses object and its last sequence
// number, the Anthropic content block still open, the Gemini model.
type terminalState struct {
	seen     bool // the first document was read
	id       string
	model    string
	created  int64
	response []byte // Responses: the response object of response.created
	seq      int64  // Responses: the last sequence_number delivered
	open     int64  // Anthropic: index of the open content block, -1 none
}

var (
	blockStartMark = []byte(`"content_block_start"`)
	blockStopMark  = []byte(`"content_block_stop"`)
	createdMark    = []byte(`"response.created"`)
)

// observe reads what the terminal sequence needs from a delivered
// document. Only the first document of a stream is parsed in full; later
// ones are looked at when their bytes show they matter.
func (t *terminalState) observe(ep Endpoint, doc []byte) {
	if !t.seen {
		t.seen, t.open = true, -1
		switch ep.Format() {
		case FormatOpenAI:
			r := gjson.GetManyBytes(doc, "id", "model", "created")
			t.id, t.model, t.created = r[0].Str, r[1].Str, r[2].Int()
		case FormatGemini:
			t.model = gjson.GetBytes(doc, "modelVersion").Str
		}
	}
	switch ep {
	case EndpointResponses:
		if bytes.Contains(doc, createdMark) {
			if r := gjson.GetBytes(doc, "response"); r.IsObject() {
				t.response = append(t.response[:0], r.Raw...)
			}
		}
		if r := gjson.GetBytes(doc, "sequence_number"); r.Type == gjson.Number {
			t.seq = r.Int()
		}
	case EndpointMessages:
		switch {
		case bytes.Contains(doc, blockStartMark):
			t.open = gjson.GetBytes(doc, "index").Int()
		case bytes.Contains(doc, blockStopMark):
			t.open = -1
		}
	}
}

// Terminal returns the bytes that end a stream cut at its output
// allowance, in the caller's format, so that SDKs finish as they do when
// a model reaches max_tokens:
//
//   - OpenAI chat: a chunk with finish_reason "length", the usage chunk
//     when the client asked for it, then [DONE]. Legacy completions alike.
//   - OpenAI Responses: response.incomplete with incomplete_details.reason
//     "max_output_tokens" and the usage.
//   - Anthropic: content_block_stop for a block still open, message_delta
//     with stop_reason "max_tokens" and the usage, message_stop.
//   - Gemini: a chunk with finishReason "MAX_TOKENS" and usageMetadata; in
//     a JSON-array stream (no alt=sse) also the closing "]", and the
//     opening "[" when nothing was sent before (first).
func (e *StreamEditor) Terminal(ep Endpoint, geminiArray, first bool) []byte {
	u, t := e.cutUsage, &e.term
	model := t.model
	if e.From != "" && model == e.From {
		model = e.To
	}
	switch ep {
	case EndpointChatCompletions, EndpointCompletions:
		return openAITerminal(ep, t, model, u, e.ClientUsage)
	case EndpointResponses:
		return responsesTerminal(t, model, u)
	case EndpointMessages:
		return anthropicTerminal(t, u)
	case EndpointStreamGenerateContent:
		return geminiTerminal(model, u, geminiArray, first)
	}
	return nil
}

func marshal(v any) []byte {
	b, _ := json.Marshal(v) // plain structs and maps: cannot fail
	return b
}

type openAIUsageJSON struct {
	Prompt     int64 `json:"prompt_tokens"`
	Completion int64 `json:"completion_tokens"`
	Total      int64 `json:"total_tokens"`
}

type openAIChunkJSON struct {
	ID      string           `json:"id"`
	Object  string           `json:"object"`
	Created int64            `json:"created"`
	Model   string           `json:"model"`
	Choices []map[string]any `json:"choices"`
	Usage   *openAIUsageJSON `json:"usage,omitempty"`
}

func openAITerminal(ep Endpoint, t *terminalState, model string, u Usage, withUsage bool) []byte {
	c := openAIChunkJSON{ID: t.id, Object: "chat.completion.chunk", Created: t.created, Model: model}
	choice := map[string]any{"index": 0, "delta": map[string]any{}, "logprobs": nil, "finish_reason": "length"}
	if ep == EndpointCompletions {
		c.Object = "text_completion"
		choice = map[string]any{"index": 0, "text": "", "logprobs": nil, "finish_reason": "length"}
	}
	c.Choices = []map[string]any{choice}
	out := append([]byte("data: "), marshal(c)...)
	out = append(out, "\n\n"...)
	if withUsage {
		c.Choices = []map[string]any{}
		c.Usage = &openAIUsageJSON{Prompt: u.Prompt, Completion: u.Completion, Total: addSat(u.Prompt, u.Completion)}
		out = append(out, "data: "...)
		out = append(out, marshal(c)...)
		out = append(out, "\n\n"...)
	}
	return append(out, "data: [DONE]\n\n"...)
}

func responsesTerminal(t *terminalState, model string, u Usage) []byte {
	resp := t.response
	if len(resp) == 0 {
		resp = marshal(map[string]any{"id": "", "object": "response", "created_at": 0, "model": model, "output": []any{}})
	}
	usage := map[string]any{
		"input_tokens": u.Prompt, "input_tokens_details": map[string]any{"cached_tokens": u.Cached},
		"output_tokens": u.Completion, "output_tokens_details": map[string]any{"reasoning_tokens": u.Reasoning},
		"total_tokens": addSat(u.Prompt, u.Completion),
	}
	resp, _ = sjson.SetBytes(resp, "status", "incomplete")
	resp, _ = sjson.SetBytes(resp, "incomplete_details", map[string]any{"reason": "max_output_tokens"})
	resp, _ = sjson.SetBytes(resp, "usage", usage)
	if model != "" {
		resp, _ = sjson.SetBytes(resp, "model", model)
	}
	out := []byte(`event: response.incomplete` + "\n" + `data: {"type":"response.incomplete","sequence_number":`)
	out = strconv.AppendInt(out, t.seq+1, 10)
	out = append(out, `,"response":`...)
	out = append(out, resp...)
	return append(out, "}\n\n"...)
}

func anthropicTerminal(t *terminalState, u Usage) []byte {
	var out []byte
	if t.open >= 0 {
		out = append(out, "event: content_block_stop\ndata: "...)
		out = append(out, marshal(map[string]any{"type": "content_block_stop", "index": t.open})...)
		out = append(out, "\n\n"...)
	}
	out = append(out, "event: message_delta\ndata: "...)
	out = append(out, marshal(map[string]any{
		"type":  "message_delta",
		"delta": map[string]any{"stop_reason": "max_tokens", "stop_sequence": nil},
		"usage": map[string]any{"output_tokens": u.Completion},
	})...)
	return append(out, "\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"...)
}

func geminiTerminal(model string, u Usage, array, first bool) []byte {
	meta := map[string]any{
		"promptTokenCount":     u.Prompt,
		"candidatesTokenCount": u.Completion - u.Reasoning,
		"totalTokenCount":      addSat(u.Prompt, u.Completion),
	}
	if u.Reasoning > 0 {
		meta["thoughtsTokenCount"] = u.Reasoning
	}
	doc := map[string]any{
		"candidates": []any{map[string]any{
			"content":      map[string]any{"parts": []any{map[string]any{"text": ""}}, "role": "model"},
			"finishReason": "MAX_TOKENS",
			"index":        0,
		}},
		"usageMetadata": meta,
	}
	if model != "" {
		doc["modelVersion"] = model
	}
	body := marshal(doc)
	if !array {
		out := append([]byte("data: "), body...)
		return append(out, "\r\n\r\n"...)
	}
	out := []byte(",\r\n")
	if first {
		out = []byte("[")
	}
	out = append(out, body...)
	return append(out, ']')
}

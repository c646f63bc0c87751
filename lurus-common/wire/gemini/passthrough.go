package gemini

import (
	"encoding/json"

	"github.com/tidwall/gjson"

	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// layout: candidatesTokenCount excludes thoughts. Answers are not renamed:
// the model is the client's path, and modelVersion is the upstream's own
// version string.
var layout = wire.MeterLayout{
	BodyUsage:   "usageMetadata",
	StreamUsage: wire.Paths{Default: []string{"usageMetadata"}},
	Usage: []wire.UsageField{
		{Key: "promptTokenCount", Counter: wire.CounterPrompt},
		{Key: "candidatesTokenCount", Counter: wire.CounterCompletion},
		{Key: "cachedContentTokenCount", Counter: wire.CounterCached},
		{Key: "thoughtsTokenCount", Counter: wire.CounterReasoning},
	},
	CompletionExcludesReasoning: true,
	Text: wire.Paths{Default: []string{
		"candidates.#.content.parts.#.text|@flatten",
		"candidates.#.content.parts.#.functionCall|@flatten",
	}},
}

// MeterLayout describes Gemini answers and stream chunks (every action).
func (Adapter) MeterLayout() *wire.MeterLayout { return &layout }

// ObserveCut keeps the modelVersion of the first chunk.
func (Adapter) ObserveCut(st wire.CutState, data []byte) wire.CutState {
	if !st.Seen {
		st.Seen, st.Open = true, -1
		st.Model = gjson.GetBytes(data, "modelVersion").Str
	}
	return st
}

// AppendCut appends a chunk with finishReason "MAX_TOKENS" and
// usageMetadata; in a JSON-array stream also the closing "]", and the
// opening "[" when nothing was sent before.
func (Adapter) AppendCut(dst []byte, _ wire.CutState, end wire.CutEnd) []byte {
	u := end.Usage
	meta := map[string]any{
		"promptTokenCount":     u.Prompt,
		"candidatesTokenCount": u.Completion - u.Reasoning,
		"totalTokenCount":      wire.AddCounts(u.Prompt, u.Completion),
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
	if end.Model != "" {
		doc["modelVersion"] = end.Model
	}
	body, _ := json.Marshal(doc)
	switch {
	case !end.Array:
		dst = append(dst, "data: "...)
		dst = append(dst, body...)
		return append(dst, "\r\n\r\n"...)
	case end.First:
		dst = append(dst, '[')
	default:
		dst = append(dst, ",\r\n"...)
	}
	dst = append(dst, body...)
	return append(dst, ']')
}

// AppendStreamError appends the error as one more SSE event or, with
// Array, as the array's last element (something was sent before), which
// closes it.
func (a Adapter) AppendStreamError(dst, body []byte) []byte {
	if a.Array {
		dst = append(dst, ",\r\n"...)
		dst = append(dst, body...)
		return append(dst, ']')
	}
	dst = append(dst, "data: "...)
	dst = append(dst, body...)
	return append(dst, "\r\n\r\n"...)
}

// methods are what every listed model offers on the gateway's routes.
var methods = []string{"generateContent", "streamGenerateContent", "countTokens", "embedContent", "batchEmbedContents"}

// EncodeModelList renders GET /v1beta/models.
func (Adapter) EncodeModelList(names []string) []byte {
	type model struct {
		Name        string   `json:"name"`
		DisplayName string   `json:"displayName"`
		Methods     []string `json:"supportedGenerationMethods"`
	}
	data := make([]model, 0, len(names))
	for _, n := range names {
		data = append(data, model{"models/" + n, n, methods})
	}
	b, _ := json.Marshal(map[string]any{"models": data})
	return b
}

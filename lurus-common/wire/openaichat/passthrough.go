package openaichat

import (
	"encoding/json"

	"github.com/tidwall/gjson"

	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// The pass-through abilities of OpenAI chat completions and of the legacy
// completions (which are relayed, never translated).

// UsageFields is the usage object of chat and legacy completions (and of
// embeddings, which adds total_tokens).
var UsageFields = []wire.UsageField{
	{Key: "prompt_tokens", Counter: wire.CounterPrompt},
	{Key: "completion_tokens", Counter: wire.CounterCompletion},
	{Key: "prompt_tokens_details", Sub: []wire.UsageField{
		{Key: "cached_tokens", Counter: wire.CounterCached},
		{Key: "cache_write_tokens", Counter: wire.CounterCacheWrite},
	}},
	{Key: "completion_tokens_details", Sub: []wire.UsageField{{Key: "reasoning_tokens", Counter: wire.CounterReasoning}}},
}

var chatLayout = wire.MeterLayout{
	BodyUsage:   "usage",
	StreamUsage: wire.Paths{Default: []string{"usage"}},
	Usage:       UsageFields,
	Text: wire.Paths{Default: []string{
		"choices.#.delta.content",
		"choices.#.delta.reasoning_content",
		"choices.#.delta.tool_calls.#.function.arguments|@flatten",
		"choices.#.message.content",
		"choices.#.message.tool_calls.#.function.arguments|@flatten",
	}},
	BodyModel:   "model",
	StreamModel: wire.Paths{Default: []string{"model"}},
}

// MeterLayout describes chat completion answers and chunks.
func (Adapter) MeterLayout() *wire.MeterLayout { return &chatLayout }

// Completions is the legacy /v1/completions endpoint: relayed as bytes
// only, so it has just the pass-through abilities.
type Completions struct{}

var completionsLayout = wire.MeterLayout{
	BodyUsage:   "usage",
	StreamUsage: wire.Paths{Default: []string{"usage"}},
	Usage:       UsageFields,
	Text:        wire.Paths{Default: []string{"choices.#.text"}},
	BodyModel:   "model",
	StreamModel: wire.Paths{Default: []string{"model"}},
}

// MeterLayout describes legacy completion answers and chunks.
func (Completions) MeterLayout() *wire.MeterLayout { return &completionsLayout }

// ObserveCut keeps the id, model and created of the first chunk, which
// the closing chunks repeat.
func (Adapter) ObserveCut(st wire.CutState, data []byte) wire.CutState { return observeChunk(st, data) }

// ObserveCut is chat's.
func (Completions) ObserveCut(st wire.CutState, data []byte) wire.CutState {
	return observeChunk(st, data)
}

func observeChunk(st wire.CutState, data []byte) wire.CutState {
	if st.Seen {
		return st
	}
	st.Seen, st.Open = true, -1
	r := gjson.GetManyBytes(data, "id", "model", "created")
	st.ID, st.Model, st.Created = r[0].Str, r[1].Str, r[2].Int()
	return st
}

// AppendCut appends a chunk with finish_reason "length", the usage chunk
// when the client asked for it, then [DONE].
func (Adapter) AppendCut(dst []byte, st wire.CutState, end wire.CutEnd) []byte {
	choice := map[string]any{"index": 0, "delta": map[string]any{}, "logprobs": nil, "finish_reason": "length"}
	return appendCut(dst, "chat.completion.chunk", choice, st, end)
}

// AppendCut is chat's, with text_completion chunks.
func (Completions) AppendCut(dst []byte, st wire.CutState, end wire.CutEnd) []byte {
	choice := map[string]any{"index": 0, "text": "", "logprobs": nil, "finish_reason": "length"}
	return appendCut(dst, "text_completion", choice, st, end)
}

type cutUsage struct {
	Prompt     int64 `json:"prompt_tokens"`
	Completion int64 `json:"completion_tokens"`
	Total      int64 `json:"total_tokens"`
}

type cutChunk struct {
	ID      string           `json:"id"`
	Object  string           `json:"object"`
	Created int64            `json:"created"`
	Model   string           `json:"model"`
	Choices []map[string]any `json:"choices"`
	Usage   *cutUsage        `json:"usage,omitempty"`
}

func appendCut(dst []byte, object string, choice map[string]any, st wire.CutState, end wire.CutEnd) []byte {
	c := cutChunk{ID: st.ID, Object: object, Created: st.Created, Model: end.Model, Choices: []map[string]any{choice}}
	b, _ := json.Marshal(c) // plain data: cannot fail
	dst = appendData(dst, b)
	if end.IncludeUsage {
		u := end.Usage
		c.Choices = []map[string]any{}
		c.Usage = &cutUsage{Prompt: u.Prompt, Completion: u.Completion, Total: wire.AddCounts(u.Prompt, u.Completion)}
		b, _ = json.Marshal(c)
		dst = appendData(dst, b)
	}
	return appendData(dst, []byte("[DONE]"))
}

// AppendStreamError appends the error as one more chunk, then [DONE].
func (Adapter) AppendStreamError(dst, body []byte) []byte {
	return appendData(appendData(dst, body), []byte("[DONE]"))
}

// EncodeModelList renders GET /v1/models.
func (Adapter) EncodeModelList(names []string) []byte {
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	data := make([]model, 0, len(names))
	for _, n := range names {
		data = append(data, model{n, "model", 0, "lurus"})
	}
	b, _ := json.Marshal(map[string]any{"object": "list", "data": data})
	return b
}

package anthropic

import (
	"bytes"
	"encoding/json"

	"github.com/tidwall/gjson"

	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// layout: input_tokens excludes cache reads and writes; message_start
// carries the prompt's usage, message_delta the cumulative output.
var layout = wire.MeterLayout{
	BodyUsage: "usage",
	StreamUsage: wire.Paths{ByType: true, Rules: []wire.Rule{
		{Type: "message_start", Paths: []string{"message.usage"}},
		{Type: "message_delta", Paths: []string{"usage"}},
	}},
	Usage: []wire.UsageField{
		{Key: "input_tokens", Counter: wire.CounterUncachedInput},
		{Key: "output_tokens", Counter: wire.CounterCompletion},
		{Key: "cache_read_input_tokens", Counter: wire.CounterCached},
		{Key: "cache_creation_input_tokens", Counter: wire.CounterCacheWrite},
		{Key: "output_tokens_details", Sub: []wire.UsageField{{Key: "thinking_tokens", Counter: wire.CounterReasoning}}},
	},
	PromptExcludesCache: true,
	Text: wire.Paths{ByType: true, Rules: []wire.Rule{
		{Type: "content_block_delta", Paths: []string{"delta.text", "delta.partial_json", "delta.thinking"}},
		{Type: "message", Paths: []string{"content.#.text", "content.#.thinking", "content.#.input"}},
	}},
	BodyModel: "model",
	StreamModel: wire.Paths{ByType: true, Rules: []wire.Rule{
		{Type: "message_start", Paths: []string{"message.model"}},
	}, Default: []string{"model"}},
}

// MeterLayout describes Messages answers and stream events.
func (Adapter) MeterLayout() *wire.MeterLayout { return &layout }

var (
	blockStartMark = []byte(`"content_block_start"`)
	blockStopMark  = []byte(`"content_block_stop"`)
)

// ObserveCut keeps the index of the content block still open.
func (Adapter) ObserveCut(st wire.CutState, data []byte) wire.CutState {
	if !st.Seen {
		st.Seen, st.Open = true, -1
	}
	switch {
	case bytes.Contains(data, blockStartMark):
		st.Open = gjson.GetBytes(data, "index").Int()
	case bytes.Contains(data, blockStopMark):
		st.Open = -1
	}
	return st
}

// AppendCut appends content_block_stop for a block still open,
// message_delta with stop_reason "max_tokens" and the output count, and
// message_stop.
func (Adapter) AppendCut(dst []byte, st wire.CutState, end wire.CutEnd) []byte {
	if st.Open >= 0 {
		b, _ := json.Marshal(map[string]any{"type": "content_block_stop", "index": st.Open})
		dst = append(dst, "event: content_block_stop\ndata: "...)
		dst = append(dst, b...)
		dst = append(dst, "\n\n"...)
	}
	b, _ := json.Marshal(map[string]any{
		"type":  "message_delta",
		"delta": map[string]any{"stop_reason": "max_tokens", "stop_sequence": nil},
		"usage": map[string]any{"output_tokens": end.Usage.Completion},
	})
	dst = append(dst, "event: message_delta\ndata: "...)
	dst = append(dst, b...)
	return append(dst, "\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"...)
}

// AppendStreamError appends the error as an "error" event.
func (Adapter) AppendStreamError(dst, body []byte) []byte {
	dst = append(dst, "event: error\ndata: "...)
	dst = append(dst, body...)
	return append(dst, "\n\n"...)
}

// EncodeModelList renders Anthropic's GET /v1/models (one page).
func (Adapter) EncodeModelList(names []string) []byte {
	type model struct {
		Type        string `json:"type"`
		ID          string `json:"id"`
		DisplayName string `json:"display_name"`
		CreatedAt   string `json:"created_at"`
	}
	data := make([]model, 0, len(names))
	for _, n := range names {
		data = append(data, model{"model", n, n, "1970-01-01T00:00:00Z"})
	}
	first, last := "", ""
	if len(names) > 0 {
		first, last = names[0], names[len(names)-1]
	}
	b, _ := json.Marshal(map[string]any{"data": data, "has_more": false, "first_id": first, "last_id": last})
	return b
}

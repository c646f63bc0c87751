package openairesponses

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

var layout = wire.MeterLayout{
	BodyUsage:   "usage",
	StreamUsage: wire.Paths{Default: []string{"response.usage"}},
	Usage: []wire.UsageField{
		{Key: "input_tokens", Counter: wire.CounterPrompt},
		{Key: "output_tokens", Counter: wire.CounterCompletion},
		{Key: "input_tokens_details", Sub: []wire.UsageField{{Key: "cached_tokens", Counter: wire.CounterCached}}},
		{Key: "output_tokens_details", Sub: []wire.UsageField{{Key: "reasoning_tokens", Counter: wire.CounterReasoning}}},
	},
	Text: wire.Paths{ByType: true, Rules: []wire.Rule{
		{Type: "response.output_text.delta", Paths: []string{"delta"}},
		{Type: "response.function_call_arguments.delta", Paths: []string{"delta"}},
		{Type: "", Paths: []string{"output.#.content.#.text|@flatten"}}, // a complete answer
	}},
	BodyModel:   "model",
	StreamModel: wire.Paths{Default: []string{"response.model"}},
}

// MeterLayout describes Responses answers and stream events.
func (Adapter) MeterLayout() *wire.MeterLayout { return &layout }

var createdMark = []byte(`"response.created"`)

// ObserveCut keeps the response object of response.created, which the
// ending repeats, and the last sequence number.
func (Adapter) ObserveCut(st wire.CutState, data []byte) wire.CutState {
	if !st.Seen {
		st.Seen, st.Open = true, -1
		st.Model = gjson.GetBytes(data, "model").Str
	}
	if bytes.Contains(data, createdMark) {
		if r := gjson.GetBytes(data, "response"); r.IsObject() {
			st.Object = append(st.Object[:0], r.Raw...)
		}
	}
	if r := gjson.GetBytes(data, "sequence_number"); r.Type == gjson.Number {
		st.Seq = r.Int()
	}
	return st
}

// AppendCut appends response.incomplete with incomplete_details.reason
// "max_output_tokens" and the usage.
func (Adapter) AppendCut(dst []byte, st wire.CutState, end wire.CutEnd) []byte {
	u := end.Usage
	resp := st.Object
	if len(resp) == 0 {
		resp, _ = json.Marshal(map[string]any{"id": "", "object": "response", "created_at": 0, "model": end.Model, "output": []any{}})
	}
	usage := map[string]any{
		"input_tokens": u.Prompt, "input_tokens_details": map[string]any{"cached_tokens": u.Cached},
		"output_tokens": u.Completion, "output_tokens_details": map[string]any{"reasoning_tokens": u.Reasoning},
		"total_tokens": wire.AddCounts(u.Prompt, u.Completion),
	}
	resp, _ = sjson.SetBytes(resp, "status", "incomplete")
	resp, _ = sjson.SetBytes(resp, "incomplete_details", map[string]any{"reason": "max_output_tokens"})
	resp, _ = sjson.SetBytes(resp, "usage", usage)
	if end.Model != "" {
		resp, _ = sjson.SetBytes(resp, "model", end.Model)
	}
	dst = append(dst, `event: response.incomplete`+"\n"+`data: {"type":"response.incomplete","sequence_number":`...)
	dst = strconv.AppendInt(dst, st.Seq+1, 10)
	dst = append(dst, `,"response":`...)
	dst = append(dst, resp...)
	return append(dst, "}\n\n"...)
}

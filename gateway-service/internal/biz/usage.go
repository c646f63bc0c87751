package biz

import (
	"bytes"
	"math"

	"github.com/tidwall/gjson"
)

// Usage are the token counts of one request, normalized as events.Usage
// defines them: Prompt includes Cached and CacheWrite, Completion includes
// Reasoning.
type Usage struct {
	Prompt     int64 `json:"prompt"`
	Completion int64 `json:"completion"`
	Cached     int64 `json:"cached"`
	CacheWrite int64 `json:"cache_write"`
	Reasoning  int64 `json:"reasoning"`
}

// Total is prompt plus completion.
func (u Usage) Total() int64 { return u.Prompt + u.Completion }

// field indexes of the raw counters a Meter keeps.
const (
	fPrompt = iota
	fCompletion
	fCached
	fCacheWrite
	fReasoning
	fAnthropicInput // Anthropic input_tokens: excludes cache reads and writes
	nFields
)

// Meter extracts usage from an upstream response: a JSON body or the data
// of each stream event. Every counter keeps the last value seen, never a
// sum, since streams repeat cumulative counts. A Meter is used by one
// goroutine.
type Meter struct {
	ep   Endpoint
	v    [nFields]int64
	seen [nFields]bool
	any  bool

	// delivered keeps the data of what reached the client (documents
	// back to back, ends[i] closing the i-th), bounded, for the local count
	// when upstream gives no usage.
	delivered []byte
	ends      []int
}

// maxDelivered bounds the bytes a Meter keeps for estimation.
const maxDelivered = 8 << 20

// NewMeter returns a Meter for endpoint ep.
func NewMeter(ep Endpoint) *Meter { return &Meter{ep: ep} }

// Reset prepares m for another request.
func (m *Meter) Reset(ep Endpoint) {
	*m = Meter{ep: ep, delivered: m.delivered[:0], ends: m.ends[:0]}
}

// set records counter i from r. A negative count (a broken upstream) is
// taken as 0: usage never lowers a bill.
func (m *Meter) set(i int, r gjson.Result) {
	if r.Type == gjson.Number {
		m.v[i], m.seen[i], m.any = max(r.Int(), 0), true, true
	}
}

// meterCounts is the part of a Meter that one stream event can change.
type meterCounts struct {
	v    [nFields]int64
	seen [nFields]bool
	any  bool
}

func (m *Meter) counts() meterCounts  { return meterCounts{m.v, m.seen, m.any} }
func (m *Meter) rewind(c meterCounts) { m.v, m.seen, m.any = c.v, c.seen, c.any }

// PromptKnown reports whether upstream has reported a prompt count.
func (m *Meter) PromptKnown() bool { return m.seen[fPrompt] || m.seen[fAnthropicInput] }

// Body reads the usage of a complete JSON response.
func (m *Meter) Body(doc []byte) {
	switch m.ep.Format() {
	case FormatAnthropic:
		m.anthropic(gjson.GetBytes(doc, "usage"))
	case FormatGemini:
		m.gemini(gjson.GetBytes(doc, "usageMetadata"))
	default:
		m.openAI(gjson.GetBytes(doc, "usage"))
	}
}

var usageMark = []byte("sage")

// Event reads the usage an event's data may carry: OpenAI chunks with a
// usage object, Responses response.completed (and .incomplete/.failed),
// Anthropic message_start and message_delta, Gemini usageMetadata. Data
// without the bytes "sage" is not parsed at all.
func (m *Meter) Event(data []byte) {
	if !bytes.Contains(data, usageMark) {
		return
	}
	switch m.ep.Format() {
	case FormatAnthropic:
		switch gjson.GetBytes(data, "type").Str {
		case "message_start":
			m.anthropic(gjson.GetBytes(data, "message.usage"))
		case "message_delta":
			m.anthropic(gjson.GetBytes(data, "usage"))
		}
	case FormatGemini:
		m.gemini(gjson.GetBytes(data, "usageMetadata"))
	default:
		if m.ep == EndpointResponses {
			m.openAI(gjson.GetBytes(data, "response.usage"))
			return
		}
		m.openAI(gjson.GetBytes(data, "usage"))
	}
}

// usageField maps a key of an upstream usage object to a Meter field, or
// to the fields of the object under it.
type usageField struct {
	key string
	f   int
	sub []usageField
}

// The usage objects of each format, read in one pass (read).
var (
	openAIChatUsage = []usageField{
		{key: "prompt_tokens", f: fPrompt},
		{key: "completion_tokens", f: fCompletion},
		{key: "prompt_tokens_details", sub: []usageField{{key: "cached_tokens", f: fCached}, {key: "cache_write_tokens", f: fCacheWrite}}},
		{key: "completion_tokens_details", sub: []usageField{{key: "reasoning_tokens", f: fReasoning}}},
	}
	openAIResponsesUsage = []usageField{
		{key: "input_tokens", f: fPrompt},
		{key: "output_tokens", f: fCompletion},
		{key: "input_tokens_details", sub: []usageField{{key: "cached_tokens", f: fCached}}},
		{key: "output_tokens_details", sub: []usageField{{key: "reasoning_tokens", f: fReasoning}}},
	}
	anthropicUsage = []usageField{
		{key: "input_tokens", f: fAnthropicInput},
		{key: "output_tokens", f: fCompletion},
		{key: "cache_read_input_tokens", f: fCached},
		{key: "cache_creation_input_tokens", f: fCacheWrite},
		{key: "output_tokens_details", sub: []usageField{{key: "thinking_tokens", f: fReasoning}}},
	}
	geminiUsage = []usageField{
		{key: "promptTokenCount", f: fPrompt},
		{key: "candidatesTokenCount", f: fCompletion},
		{key: "cachedContentTokenCount", f: fCached},
		{key: "thoughtsTokenCount", f: fReasoning},
	}
)

// read sets the fields of u that fields name, walking u once.
func (m *Meter) read(u gjson.Result, fields []usageField) {
	u.ForEach(func(k, v gjson.Result) bool {
		for i := range fields {
			f := &fields[i]
			if k.Str != f.key {
				continue
			}
			if f.sub == nil {
				m.set(f.f, v)
			} else if v.IsObject() {
				m.read(v, f.sub)
			}
			break
		}
		return true
	})
}

func (m *Meter) openAI(u gjson.Result) {
	if !u.IsObject() {
		return
	}
	if m.ep == EndpointResponses {
		m.read(u, openAIResponsesUsage)
		return
	}
	m.read(u, openAIChatUsage)
	if m.ep == EndpointEmbeddings && !m.seen[fPrompt] {
		m.set(fPrompt, u.Get("total_tokens"))
	}
}

func (m *Meter) anthropic(u gjson.Result) {
	if u.IsObject() {
		m.read(u, anthropicUsage)
	}
}

func (m *Meter) gemini(u gjson.Result) {
	if u.IsObject() {
		m.read(u, geminiUsage)
	}
}

// Usage returns the normalized counts and whether upstream gave any.
func (m *Meter) Usage() (Usage, bool) {
	u := Usage{
		Prompt:     m.v[fPrompt],
		Completion: m.v[fCompletion],
		Cached:     m.v[fCached],
		CacheWrite: m.v[fCacheWrite],
		Reasoning:  m.v[fReasoning],
	}
	switch m.ep.Format() {
	case FormatAnthropic:
		// input_tokens excludes cache reads and writes.
		u.Prompt = addSat(addSat(m.v[fAnthropicInput], u.Cached), u.CacheWrite)
	case FormatGemini:
		// candidatesTokenCount excludes thoughts.
		u.Completion = addSat(u.Completion, u.Reasoning)
	}
	return u, m.any
}

// addSat adds two non-negative counts, saturating instead of wrapping.
func addSat(a, b int64) int64 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxInt64
}

// Deliver remembers data that reached the client (a stream event's data or
// a whole body), for Estimate. Beyond maxDelivered bytes it keeps nothing
// more; the estimate is then a lower bound.
func (m *Meter) Deliver(data []byte) {
	if len(m.delivered)+len(data) > maxDelivered {
		return
	}
	m.delivered = append(m.delivered, data...)
	m.ends = append(m.ends, len(m.delivered))
}

// DeliveredText returns the generated text found in what was delivered:
// message contents, tool-call arguments and thinking, per format.
func (m *Meter) DeliveredText() []byte {
	var out []byte
	start := 0
	for _, end := range m.ends {
		out = appendGenerated(out, m.ep, m.delivered[start:end])
		start = end
	}
	return out
}

// appendGenerated appends the generated text of one response document or
// stream event to dst.
func appendGenerated(dst []byte, ep Endpoint, doc []byte) []byte {
	if !gjson.ValidBytes(doc) {
		return dst
	}
	root := gjson.ParseBytes(doc)
	add := func(r gjson.Result) {
		if !r.IsArray() {
			dst = appendValue(dst, r)
			return
		}
		r.ForEach(func(_, v gjson.Result) bool {
			dst = appendValue(dst, v)
			return true
		})
	}
	switch ep.Format() {
	case FormatAnthropic:
		switch root.Get("type").Str {
		case "content_block_delta":
			add(root.Get("delta.text"))
			add(root.Get("delta.partial_json"))
			add(root.Get("delta.thinking"))
		case "message":
			add(root.Get("content.#.text"))
			add(root.Get("content.#.thinking"))
			add(root.Get("content.#.input"))
		}
	case FormatGemini:
		add(root.Get("candidates.#.content.parts.#.text|@flatten"))
		add(root.Get("candidates.#.content.parts.#.functionCall|@flatten"))
	default:
		switch ep {
		case EndpointResponses:
			switch root.Get("type").Str {
			case "response.output_text.delta", "response.function_call_arguments.delta":
				add(root.Get("delta"))
			case "":
				add(root.Get("output.#.content.#.text|@flatten"))
			}
		case EndpointCompletions:
			add(root.Get("choices.#.text"))
		case EndpointChatCompletions:
			add(root.Get("choices.#.delta.content"))
			add(root.Get("choices.#.delta.reasoning_content"))
			add(root.Get("choices.#.delta.tool_calls.#.function.arguments|@flatten"))
			add(root.Get("choices.#.message.content"))
			add(root.Get("choices.#.message.tool_calls.#.function.arguments|@flatten"))
		}
	}
	return dst
}

func appendValue(dst []byte, v gjson.Result) []byte {
	switch v.Type {
	case gjson.String:
		return append(dst, v.Str...)
	case gjson.JSON:
		return append(dst, v.Raw...)
	}
	return dst
}

// promptKeys hold the input text of a request in all three formats.
var promptKeys = map[string]bool{
	"content": true, "text": true, "prompt": true, "input": true,
	"instructions": true, "system": true, "arguments": true,
}

// PromptText returns the input text of a request body: every string under
// a content, text, prompt, input, instructions, system or arguments key
// (directly or in an array under it), at any depth. It feeds the local count when upstream gives no usage.
func PromptText(body []byte) []byte {
	var out []byte
	var walk func(r gjson.Result, take bool)
	walk = func(r gjson.Result, take bool) {
		switch {
		case r.IsObject():
			r.ForEach(func(k, v gjson.Result) bool {
				walk(v, promptKeys[k.Str])
				return true
			})
		case r.IsArray():
			r.ForEach(func(_, v gjson.Result) bool {
				walk(v, take)
				return true
			})
		case take && r.Type == gjson.String:
			out = append(out, r.Str...)
			out = append(out, '\n')
		}
	}
	if gjson.ValidBytes(body) {
		walk(gjson.ParseBytes(body), false)
	}
	return out
}

package biz

import (
	"bytes"
	"math"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
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

// wire is u in the canonical form (the same normalization).
func (u Usage) wire() wire.Usage {
	return wire.Usage{Prompt: u.Prompt, Completion: u.Completion, Cached: u.Cached, CacheWrite: u.CacheWrite, Reasoning: u.Reasoning}
}

// Meter extracts usage from an upstream response: a JSON body or the data
// of each stream event, where the endpoint's adapter says usage lives
// (wire.MeterLayout). Every counter keeps the last value seen, never a
// sum, since streams repeat cumulative counts. A Meter is used by one
// goroutine.
type Meter struct {
	lay  *wire.MeterLayout
	v    [wire.NumCounters]int64
	seen [wire.NumCounters]bool
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
func NewMeter(ep Endpoint) *Meter { return &Meter{lay: ep.relayed().layout} }

// Reset prepares m for another request.
func (m *Meter) Reset(ep Endpoint) {
	*m = Meter{lay: ep.relayed().layout, delivered: m.delivered[:0], ends: m.ends[:0]}
}

// set records counter i from r. A negative count (a broken upstream) is
// taken as 0: usage never lowers a bill.
func (m *Meter) set(i wire.Counter, r gjson.Result) {
	if r.Type == gjson.Number {
		m.v[i], m.seen[i], m.any = max(r.Int(), 0), true, true
	}
}

// meterCounts is the part of a Meter that one stream event can change.
type meterCounts struct {
	v    [wire.NumCounters]int64
	seen [wire.NumCounters]bool
	any  bool
}

func (m *Meter) counts() meterCounts  { return meterCounts{m.v, m.seen, m.any} }
func (m *Meter) rewind(c meterCounts) { m.v, m.seen, m.any = c.v, c.seen, c.any }

// PromptKnown reports whether upstream has reported a prompt count.
func (m *Meter) PromptKnown() bool {
	return m.seen[wire.CounterPrompt] || m.seen[wire.CounterUncachedInput]
}

// Body reads the usage of a complete JSON response.
func (m *Meter) Body(doc []byte) {
	if m.lay.BodyUsage != "" {
		m.read(gjson.GetBytes(doc, m.lay.BodyUsage), m.lay.Usage)
	}
}

var usageMark = []byte("sage")

// docType is the "type" member of a JSON document, read without copying:
// valid only while doc is (it is only compared).
func docType(doc []byte) string {
	return gjson.Get(unsafe.String(unsafe.SliceData(doc), len(doc)), "type").Str
}

// Event reads the usage an event's data may carry (OpenAI chunks with a
// usage object, Responses response.completed, Anthropic message_start and
// message_delta, Gemini usageMetadata, …). Data without the bytes "sage"
// is not parsed at all.
func (m *Meter) Event(data []byte) {
	if !bytes.Contains(data, usageMark) {
		return
	}
	p := &m.lay.StreamUsage
	paths := p.Default
	if p.ByType {
		paths = p.For(docType(data))
	}
	if len(paths) > 0 {
		m.read(gjson.GetBytes(data, paths[0]), m.lay.Usage)
	}
}

// read sets the counters of u that fields name, walking u once.
func (m *Meter) read(u gjson.Result, fields []wire.UsageField) {
	if !u.IsObject() {
		return
	}
	u.ForEach(func(k, v gjson.Result) bool {
		for i := range fields {
			f := &fields[i]
			if k.Str != f.Key {
				continue
			}
			switch {
			case f.Sub != nil:
				m.read(v, f.Sub)
			case !f.IfUnset || !m.seen[f.Counter]:
				m.set(f.Counter, v)
			}
			break
		}
		return true
	})
}

// Usage returns the normalized counts and whether upstream gave any.
func (m *Meter) Usage() (Usage, bool) {
	u := Usage{
		Prompt:     m.v[wire.CounterPrompt],
		Completion: m.v[wire.CounterCompletion],
		Cached:     m.v[wire.CounterCached],
		CacheWrite: m.v[wire.CounterCacheWrite],
		Reasoning:  m.v[wire.CounterReasoning],
	}
	if m.lay.PromptExcludesCache {
		u.Prompt = addSat(addSat(m.v[wire.CounterUncachedInput], u.Cached), u.CacheWrite)
	}
	if m.lay.CompletionExcludesReasoning {
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
// message contents, tool-call arguments and thinking, where the
// endpoint's adapter says they are.
func (m *Meter) DeliveredText() []byte {
	var out []byte
	start := 0
	for _, end := range m.ends {
		out = appendGenerated(out, m.lay, m.delivered[start:end])
		start = end
	}
	return out
}

// appendGenerated appends the generated text of one response document or
// stream event to dst.
func appendGenerated(dst []byte, lay *wire.MeterLayout, doc []byte) []byte {
	paths := lay.Text.Default
	if len(paths) == 0 && !lay.Text.ByType {
		return dst
	}
	if !gjson.ValidBytes(doc) {
		return dst
	}
	root := gjson.ParseBytes(doc)
	if lay.Text.ByType {
		paths = lay.Text.For(root.Get("type").Str)
	}
	for _, p := range paths {
		r := root.Get(p)
		if !r.IsArray() {
			dst = appendValue(dst, r)
			continue
		}
		r.ForEach(func(_, v gjson.Result) bool {
			dst = appendValue(dst, v)
			return true
		})
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

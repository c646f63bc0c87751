package biz

import (
	"bytes"

	"github.com/tidwall/gjson"

	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// Framer cuts an upstream stream into the units relayed one by one: SSE
// events, or the elements of a streamed JSON array (Gemini without
// alt=sse). Feed appends bytes as they arrive; Next returns the next
// complete unit (its raw bytes, relayed as they are, and the JSON document
// inside it) until none is complete.
type Framer interface {
	Feed(p []byte)
	Next() (raw, doc []byte, ok bool)
	// Rest returns what is left after the last complete unit (bytes of a
	// stream that ended mid-unit, or the closing "]" of an array).
	Rest() []byte
}

// buffer is the byte accumulator shared by both framers. Consumed bytes
// are dropped lazily on the next Feed, so slices returned by Next stay
// valid until then.
type buffer struct {
	b   []byte
	off int
}

func (s *buffer) Feed(p []byte) {
	if s.off > 0 {
		n := copy(s.b, s.b[s.off:])
		s.b = s.b[:n]
		s.off = 0
	}
	s.b = append(s.b, p...)
}

func (s *buffer) Rest() []byte { return s.b[s.off:] }

// SSEFramer splits Server-Sent Events at blank lines ("\n\n", "\r\n\r\n"
// or "\r\r").
type SSEFramer struct{ buffer }

// Next implements Framer. doc is the event's data (SSEData): a slice of
// raw when the event has one data line, as every upstream here sends.
func (s *SSEFramer) Next() (raw, doc []byte, ok bool) {
	rest := s.b[s.off:]
	end := eventEnd(rest)
	if end < 0 {
		return nil, nil, false
	}
	raw = rest[:end]
	s.off += end
	return raw, SSEData(raw), true
}

// eventEnd returns the length of the first complete event in b including
// its terminating blank line, or -1.
func eventEnd(b []byte) int {
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\n':
			if i+1 < len(b) && b[i+1] == '\n' {
				return i + 2
			}
			if i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n' {
				return i + 3
			}
		case '\r':
			if i+1 < len(b) && b[i+1] == '\r' {
				return i + 2
			}
		}
	}
	return -1
}

// SSEData returns an event's data as the SSE format defines it: the
// values of its data lines ("data:value" or "data" alone; one space after
// the colon removed) joined by "\n", or nil when it has none. An event with
// one data line, which is what every upstream here sends, gets a slice of
// ev (no copy); one with several gets a new slice.
func SSEData(ev []byte) []byte {
	var data []byte
	n := 0
	for len(ev) > 0 {
		var line []byte
		line, ev = nextLine(ev)
		v, ok := sseDataValue(line)
		if !ok {
			continue
		}
		n++
		switch n {
		case 1:
			data = v
		case 2:
			data = append(append(append(make([]byte, 0, len(data)+1+len(v)), data...), '\n'), v...)
		default:
			data = append(append(data, '\n'), v...)
		}
	}
	return data
}

// withSSEData returns a copy of event raw whose data is data: raw's data
// lines are dropped, and data is written, one "data: " line per line of
// it, where the first of them was. Every other line is kept; lines end in
// "\n".
func withSSEData(raw, data []byte) []byte {
	out := make([]byte, 0, len(raw)+len(data)+8)
	written := false
	for len(raw) > 0 {
		var line []byte
		line, raw = nextLine(raw)
		if _, ok := sseDataValue(line); !ok {
			out = append(append(out, line...), '\n')
			continue
		}
		if written {
			continue
		}
		written = true
		for rest := data; ; {
			var l []byte
			l, rest = nextLine(rest)
			out = append(append(append(out, "data: "...), l...), '\n')
			if len(rest) == 0 {
				break
			}
		}
	}
	return out
}

// nextLine cuts the first line of b at "\r\n", "\r" or "\n" (the SSE line
// ends) and returns it and what follows.
func nextLine(b []byte) (line, rest []byte) {
	i := bytes.IndexAny(b, "\r\n")
	if i < 0 {
		return b, nil
	}
	if b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n' {
		return b[:i], b[i+2:]
	}
	return b[:i], b[i+1:]
}

// sseDataValue returns the value of line if it is a data field.
func sseDataValue(line []byte) ([]byte, bool) {
	v, ok := bytes.CutPrefix(line, []byte("data"))
	if !ok || (len(v) > 0 && v[0] != ':') { // "database: x" is another field
		return nil, false
	}
	if len(v) > 0 {
		v = v[1:]
		if len(v) > 0 && v[0] == ' ' {
			v = v[1:]
		}
	}
	return v, true
}

// ArrayFramer splits a streamed JSON array ("[{…},\r\n{…}]") into its
// elements. raw is everything from the previous cut to the end of the
// element (the "[" or "," before it included); the closing "]" is left in
// Rest.
type ArrayFramer struct {
	buffer
	scan     int // scan position relative to b
	depth    int
	inString bool
	escape   bool
	start    int // start of the current element, -1 before one
	elements int
}

// NewArrayFramer returns an empty ArrayFramer.
func NewArrayFramer() *ArrayFramer { return &ArrayFramer{start: -1} }

// Feed implements Framer.
func (a *ArrayFramer) Feed(p []byte) {
	off := a.off
	a.buffer.Feed(p)
	a.scan -= off
	if a.start >= 0 {
		a.start -= off
	}
}

// Elements is the number of elements returned so far.
func (a *ArrayFramer) Elements() int { return a.elements }

// Next implements Framer.
func (a *ArrayFramer) Next() (raw, doc []byte, ok bool) {
	for ; a.scan < len(a.b); a.scan++ {
		c := a.b[a.scan]
		if a.inString {
			switch {
			case a.escape:
				a.escape = false
			case c == '\\':
				a.escape = true
			case c == '"':
				a.inString = false
			}
			continue
		}
		switch c {
		case '"':
			a.inString = true
		case '{', '[':
			a.depth++
			if a.depth == 2 {
				a.start = a.scan
			}
		case '}', ']':
			a.depth--
			if a.depth == 1 && a.start >= 0 {
				end := a.scan + 1
				raw, doc = a.b[a.off:end], a.b[a.start:end]
				a.off, a.scan, a.start = end, end, -1
				a.elements++
				return raw, doc, true
			}
		}
	}
	return nil, nil, false
}

// StreamEditor decides what of each upstream stream unit reaches the
// client: it meters usage, remembers delivered text, drops the usage
// chunk the gateway asked for on the client's behalf, renames the model
// back to the client's alias, and stops the stream before a unit would
// take the delivered output past what was held for it (an upstream that
// ignores the output cap it was told).
type StreamEditor struct {
	Meter *Meter
	// HideUsageChunk drops OpenAI's final usage-only chunk (choices: []).
	HideUsageChunk bool
	// From and To rename the model ("" From: no renaming).
	From, To string

	// HeldOutput is the output allowance held for the request (the output
	// cap times n or candidateCount); 0 turns the check off.
	HeldOutput int64
	// Tokens counts delivered text, only once its byte count passes
	// HeldOutput (see over).
	Tokens TokenCounter
	// PromptTokens counts the prompt locally; a cut stream's usage uses
	// it when upstream has not reported the prompt.
	PromptTokens func() int64
	// ClientUsage is set when the client itself asked for OpenAI's usage
	// chunk: the terminal sequence of a cut stream then carries one.
	ClientUsage bool

	out      outputCount
	term     wire.CutState
	cut      bool
	cutUsage Usage
	scratch  []byte
}

// outputCount is what a StreamEditor knows of the output delivered so
// far. It climbs three steps, each taken only when the cheaper bound
// before it no longer proves the stream is within its allowance:
// document bytes (a document's JSON is at least as long as the text in
// it), generated-text bytes (a byte-level BPE token is at least one byte
// of text), and a local token count.
type outputCount struct {
	docBytes  int64
	textBytes int64
	tokens    int64
	textOn    bool // textBytes is kept
	tokensOn  bool // tokens is kept
}

var (
	doneMark   = []byte("[DONE]")
	choicesNil = []byte(`"choices":[]`)
)

// Edit returns what to send for one unit (raw as framed, doc its JSON),
// nil to drop it. The returned slice may alias raw. Once Cut reports
// true, the unit was withheld and the caller ends the stream with
// Terminal.
func (e *StreamEditor) Edit(ep Endpoint, raw, doc []byte) []byte {
	if len(doc) == 0 || bytes.Equal(doc, doneMark) {
		return raw
	}
	var before meterCounts
	if e.HeldOutput > 0 {
		before = e.Meter.counts()
	}
	e.Meter.Event(doc)
	if e.HeldOutput > 0 {
		if e.over(ep, doc, before) {
			e.Meter.rewind(before) // bill what was delivered, not this unit
			e.cutAt()
			return nil
		}
		if c := ep.relayed().cutter; c != nil {
			e.term = c.ObserveCut(e.term, doc)
		}
	}
	if e.HideUsageChunk && bytes.Contains(doc, choicesNil) && bytes.Contains(doc, usageMark) {
		if u := gjson.GetBytes(doc, "usage"); u.IsObject() && gjson.GetBytes(doc, "choices.#").Int() == 0 {
			return nil
		}
	}
	e.Meter.Deliver(doc)
	if e.From == "" || !bytes.Contains(doc, []byte(e.From)) {
		return raw
	}
	sm := &e.Meter.lay.StreamModel
	paths := sm.Default
	if sm.ByType {
		paths = sm.For(docType(doc))
	}
	if len(paths) == 0 {
		return raw
	}
	nd := RenameModel(doc, paths[0], e.From, e.To)
	if len(nd) == len(doc) && bytes.Equal(nd, doc) {
		return raw
	}
	i := bytes.Index(raw, doc)
	if i < 0 { // data of several lines, joined: write the event anew
		return withSSEData(raw, nd)
	}
	out := make([]byte, 0, len(raw)+len(nd)-len(doc))
	out = append(out, raw[:i]...)
	out = append(out, nd...)
	return append(out, raw[i+len(doc):]...)
}

// over reports whether delivering doc would take the output past
// HeldOutput: by upstream's own cumulative count (Anthropic
// message_delta, Gemini usageMetadata, OpenAI usage), or by the
// gateway's count of the generated text delivered. The token count runs
// only once the text bytes pass the allowance, so a stream within its
// cap never meets the tokenizer.
func (e *StreamEditor) over(ep Endpoint, doc []byte, before meterCounts) bool {
	if e.Meter.any && e.Meter.counts() != before {
		if u, _ := e.Meter.Usage(); u.Completion > e.HeldOutput {
			return true
		}
	}
	c := &e.out
	if !c.textOn {
		if c.docBytes += int64(len(doc)); c.docBytes <= e.HeldOutput {
			return false
		}
		c.textOn = true
		c.textBytes = int64(len(e.Meter.DeliveredText()))
	}
	e.scratch = appendGenerated(e.scratch[:0], e.Meter.lay, doc)
	return c.textOver(e.HeldOutput, e.scratch, e.Meter.DeliveredText, e.count)
}

// textOver adds text, generated output about to be delivered, to the
// count and reports whether it takes the output past held: first by text
// bytes, then, once those pass held, by the local token count (delivered
// is the text delivered before, counted once at that step).
func (c *outputCount) textOver(held int64, text []byte, delivered func() []byte, count func([]byte) int64) bool {
	if len(text) == 0 {
		return false
	}
	if !c.tokensOn {
		if c.textBytes += int64(len(text)); c.textBytes <= held {
			return false
		}
		c.tokensOn = true
		c.tokens = count(delivered())
	}
	n := count(text)
	if c.tokens+n > held {
		return true
	}
	c.tokens += n
	return false
}

func (e *StreamEditor) count(text []byte) int64 {
	if e.Tokens == nil {
		return int64(len(text)) // one token per byte: the upper bound
	}
	return e.Tokens.Count(text)
}

// cutAt records the cut and the usage to bill: the prompt as upstream
// reported it (else the local count), and as output the larger of
// upstream's cumulative count and the local count of what was delivered.
func (e *StreamEditor) cutAt() {
	e.cut = true
	u, _ := e.Meter.Usage()
	e.cutUsage = e.out.cutUsage(u, e.Meter.PromptKnown(), e.PromptTokens, e.HeldOutput, e.Meter.DeliveredText, e.count)
}

// cutUsage is the usage billed for a stream cut at held, from u, the
// last usage upstream reported: the prompt as upstream reported it (else
// the local count of prompt), and as output the larger of upstream's
// cumulative count and the local count of what was delivered, at most
// held.
func (c *outputCount) cutUsage(u Usage, promptKnown bool, prompt func() int64, held int64,
	delivered func() []byte, count func([]byte) int64) Usage {
	if !promptKnown && prompt != nil {
		u.Prompt = prompt()
	}
	local := c.tokens
	if !c.tokensOn {
		local = count(delivered())
	}
	u.Completion = min(max(u.Completion, local), held)
	u.Reasoning = min(u.Reasoning, u.Completion)
	return u
}

// Cut reports whether the stream was stopped at its output allowance.
func (e *StreamEditor) Cut() bool { return e.cut }

// CutUsage is the usage billed for a cut stream (see cutAt), and
// whether its prompt count is upstream's own.
func (e *StreamEditor) CutUsage() (Usage, bool) { return e.cutUsage, e.Meter.PromptKnown() }

package biz

import (
	"bytes"

	"github.com/tidwall/gjson"
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

// Next implements Framer. doc is the event's data (the first data line;
// every upstream here sends one-line JSON data).
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

// SSEData returns the value of the first "data:" line of an event (one
// leading space removed, as the SSE format says).
func SSEData(ev []byte) []byte {
	for len(ev) > 0 {
		line := ev
		if i := bytes.IndexAny(ev, "\r\n"); i >= 0 {
			line, ev = ev[:i], ev[i+1:]
		} else {
			ev = nil
		}
		if v, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			if len(v) > 0 && v[0] == ' ' {
				v = v[1:]
			}
			return v
		}
	}
	return nil
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
// chunk the gateway asked for on the client's behalf, and renames the
// model back to the client's alias.
type StreamEditor struct {
	Meter *Meter
	// HideUsageChunk drops OpenAI's final usage-only chunk (choices: []).
	HideUsageChunk bool
	// From and To rename the model ("" From: no renaming).
	From, To string
}

var (
	doneMark   = []byte("[DONE]")
	choicesNil = []byte(`"choices":[]`)
)

// Edit returns what to send for one unit (raw as framed, doc its JSON),
// nil to drop it. The returned slice may alias raw.
func (e *StreamEditor) Edit(ep Endpoint, raw, doc []byte) []byte {
	if len(doc) == 0 || bytes.Equal(doc, doneMark) {
		return raw
	}
	e.Meter.Event(doc)
	if e.HideUsageChunk && bytes.Contains(doc, choicesNil) && bytes.Contains(doc, usageMark) {
		if u := gjson.GetBytes(doc, "usage"); u.IsObject() && gjson.GetBytes(doc, "choices.#").Int() == 0 {
			return nil
		}
	}
	e.Meter.Deliver(doc)
	if e.From == "" || !bytes.Contains(doc, []byte(e.From)) {
		return raw
	}
	path := "model"
	switch {
	case ep == EndpointResponses:
		path = "response.model"
	case ep == EndpointMessages && bytes.Contains(doc, []byte(`"message_start"`)):
		path = "message.model"
	}
	nd := RenameModel(doc, path, e.From, e.To)
	if len(nd) == len(doc) && bytes.Equal(nd, doc) {
		return raw
	}
	i := bytes.Index(raw, doc)
	out := make([]byte, 0, len(raw)+len(nd)-len(doc))
	out = append(out, raw[:i]...)
	out = append(out, nd...)
	return append(out, raw[i+len(doc):]...)
}

// ResponseModelPath is where a JSON response body names its model.
func ResponseModelPath(ep Endpoint) string {
	if ep.Format() == FormatGemini {
		return "modelVersion"
	}
	return "model"
}

package biz

import (
	"errors"
	"io"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// Pump is the outcome of relaying one upstream stream.
type Pump struct {
	// Units is how many units reached the client.
	Units int
	// UpstreamErr is the read error that ended the stream early (nil on a
	// clean end).
	UpstreamErr error
	// ClientErr is the first write error (the client went away); the rest
	// of the stream was drained and metered, not sent.
	ClientErr error
	// Cut is set when the stream was stopped at its output allowance
	// (StreamEditor.Cut): the terminal sequence was sent instead of the
	// rest, and upstream was not read further.
	Cut bool
}

// ErrStreamCut is the reason shown to a client whose stream ended because
// upstream failed after bytes were sent.
var ErrStreamCut = apperr.New(apperr.ReasonUpstreamError, "upstream stream ended unexpectedly")

// PumpStream relays src to write unit by unit (one write, and so one
// flush, per SSE event or array element), editing each with ed. When the
// client write fails it keeps reading src, metering only, until src ends:
// the caller bounds that with a deadline on src. When src fails after a
// unit was sent, the stream is closed with an error unit in the caller's
// format. A clean end of a JSON-array stream writes the closing bytes.
// When ed cuts the stream at its output allowance, PumpStream sends ed's
// terminal sequence and returns at once: the caller closes upstream
// without draining it, so no more output is paid for. buf is scratch
// space for reads.
func PumpStream(src io.Reader, fr Framer, ed *StreamEditor, ep Endpoint, write func([]byte) error, buf []byte) Pump {
	var p Pump
	send := func(b []byte) {
		if p.ClientErr != nil || len(b) == 0 {
			return
		}
		if err := write(b); err != nil {
			p.ClientErr = err
			return
		}
		p.Units++
	}
	_, isArray := fr.(*ArrayFramer)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			fr.Feed(buf[:n])
			for {
				raw, doc, ok := fr.Next()
				if !ok {
					break
				}
				send(ed.Edit(ep, raw, doc))
				if ed.Cut() {
					p.Cut = true
					send(ed.Terminal(ep, isArray, p.Units == 0))
					return p
				}
			}
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, io.EOF) {
			p.UpstreamErr = err
		}
		break
	}
	if p.UpstreamErr == nil {
		if isArray {
			send(fr.Rest())
		}
		return p
	}
	if p.Units > 0 {
		send(StreamErrorEvent(ep.Format(), isArray, ErrStreamCut))
	}
	return p
}

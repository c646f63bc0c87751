// Package httpobs lets net/http middleware observe what a handler answered
// (status and size, for the access log and metrics) without hiding what the
// underlying writer can do: flushing for streams, hijacking for WebSocket
// upgrades, and http.ResponseController through Unwrap.
package httpobs

import (
	"bufio"
	"net"
	"net/http"
)

// Recorder wraps an http.ResponseWriter and records the response status and
// body size.
type Recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

// NewRecorder wraps w.
func NewRecorder(w http.ResponseWriter) *Recorder { return &Recorder{ResponseWriter: w} }

// Status is the status sent (200 when the handler wrote a body without
// one, 0 when it wrote nothing, 101 after a hijack).
func (r *Recorder) Status() int { return r.status }

// Bytes is the number of body bytes written.
func (r *Recorder) Bytes() int64 { return r.bytes }

// WriteHeader records the first status written.
func (r *Recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write counts the bytes written (an implicit 200 if no status came first).
func (r *Recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Flush lets streaming handlers flush through the wrapper.
func (r *Recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack passes a connection takeover (WebSocket upgrade) through and
// records it as 101 Switching Protocols.
func (r *Recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	c, brw, err := h.Hijack()
	if err == nil && r.status == 0 {
		r.status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (r *Recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

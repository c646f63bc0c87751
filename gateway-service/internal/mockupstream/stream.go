package mockupstream

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// Event framing of the streaming formats.
const (
	// contentTypeSSE is what OpenAI and Anthropic send for a stream.
	contentTypeSSE = "text/event-stream; charset=utf-8"
	// contentTypeGeminiSSE is what Gemini sends for ?alt=sse.
	contentTypeGeminiSSE = "text/event-stream"
	contentTypeJSON      = "application/json"
	// contentTypeGeminiJSON is what Gemini sends for JSON and for the
	// streamed JSON array.
	contentTypeGeminiJSON = "application/json; charset=UTF-8"
)

// startStream writes the status line and headers of a stream and flushes
// them, so the client sees its first byte at once.
func (ex *exchange) startStream(contentType string) error {
	h := ex.w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	ex.w.WriteHeader(http.StatusOK)
	return ex.rc.Flush()
}

// frame writes one framing event (start, stop, usage, [DONE]) and flushes it.
func (ex *exchange) frame(b []byte) error {
	if _, err := ex.w.Write(b); err != nil {
		return err
	}
	return ex.rc.Flush()
}

// chunk writes the next content chunk and flushes it. It carries out the
// plan: the gap before every chunk but the first, the cut once cut_after
// chunks are out, the mid-stream hang after the first chunk.
func (ex *exchange) chunk(b []byte) error {
	if ex.plan.cutAfter >= 0 && ex.sent >= ex.plan.cutAfter {
		ex.abort()
	}
	if ex.sent > 0 && ex.plan.gap > 0 {
		if err := sleep(ex.ctx, ex.plan.gap); err != nil {
			return err
		}
	}
	if err := ex.frame(b); err != nil {
		return err
	}
	ex.sent++
	if ex.plan.hang == hangMid && ex.sent == 1 {
		<-ex.ctx.Done()
		return ex.ctx.Err()
	}
	return nil
}

// endContent is called after the last content chunk, before the events that
// finish the stream: a cut planned beyond the chunk count happens here, and
// so does a mid-stream hang of a reply without chunks.
func (ex *exchange) endContent() error {
	if ex.plan.cutAfter >= 0 {
		ex.abort()
	}
	if ex.plan.hang == hangMid && ex.sent == 0 {
		<-ex.ctx.Done()
		return ex.ctx.Err()
	}
	return nil
}

// abort drops the connection without finishing the response: net/http
// closes it on this panic without logging, so an HTTP/1.1 client reading
// the chunked body gets an unexpected EOF.
func (ex *exchange) abort() {
	ex.cut = true
	panic(http.ErrAbortHandler)
}

// writeJSON writes a whole JSON reply. A mid-stream hang sends the first
// half of the body and then nothing more.
func (ex *exchange) writeJSON(status int, contentType string, body []byte) error {
	h := ex.w.Header()
	h.Set("Content-Type", contentType)
	if ex.plan.hang == hangMid {
		ex.w.WriteHeader(status)
		if err := ex.frame(body[:len(body)/2]); err != nil {
			return err
		}
		<-ex.ctx.Done()
		return ex.ctx.Err()
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	ex.w.WriteHeader(status)
	_, err := ex.w.Write(body)
	return err
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

package biz

import (
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// ErrorBody renders err as the JSON error body of format f and returns the
// status to send with it. The message is the apperr message; an internal
// fault never shows its cause, and no credential is ever part of a message.
// The shape is the format's adapter's (wire.ErrorRenderer).
func ErrorBody(f Format, err error) (int, []byte) {
	ae := apperr.From(err)
	status := ae.Kind.HTTPStatus()
	msg := ae.Message
	if ae.Kind == apperr.KindInternal {
		msg = "internal error"
	}
	return status, f.family().errors.RenderError(status, string(ae.Reason), msg)
}

// StreamErrorEvent is what ends a stream whose upstream failed after bytes
// reached the client, in the caller's framing (wire.StreamErrorWriter):
// OpenAI an error chunk then [DONE]; Anthropic an "error" event; Gemini an
// error object as one more SSE event, or as the array's last element when
// array (the body so far is "[elem,elem" and this closes it).
func StreamErrorEvent(f Format, array bool, err error) []byte {
	_, body := ErrorBody(f, err)
	i := 0
	if array {
		i = 1
	}
	return f.family().streamError[i].AppendStreamError(make([]byte, 0, len(body)+24), body)
}

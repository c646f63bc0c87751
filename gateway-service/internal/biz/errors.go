package biz

import (
	"encoding/json"
	"net/http"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// ErrorBody renders err as the JSON error body of format f and returns the
// status to send with it. The message is the apperr message; an internal
// fault never shows its cause, and no credential is ever part of a message.
func ErrorBody(f Format, err error) (int, []byte) {
	ae := apperr.From(err)
	status := ae.Kind.HTTPStatus()
	msg := ae.Message
	if ae.Kind == apperr.KindInternal {
		msg = "internal error"
	}
	return status, renderError(f, status, string(ae.Reason), msg)
}

// StreamErrorEvent is what ends a stream whose upstream failed after bytes
// reached the client, in the caller's framing: OpenAI an error chunk then
// [DONE]; Anthropic an "error" event; Gemini an error object as one more SSE
// event, or as the array's last element when geminiArray (the body so far
// is "[elem,elem" and this closes it).
func StreamErrorEvent(f Format, geminiArray bool, err error) []byte {
	_, body := ErrorBody(f, err)
	switch f {
	case FormatAnthropic:
		out := make([]byte, 0, len(body)+24)
		out = append(out, "event: error\ndata: "...)
		out = append(out, body...)
		return append(out, "\n\n"...)
	case FormatGemini:
		if geminiArray {
			out := make([]byte, 0, len(body)+4)
			out = append(out, ",\r\n"...)
			out = append(out, body...)
			return append(out, ']')
		}
		out := make([]byte, 0, len(body)+10)
		out = append(out, "data: "...)
		out = append(out, body...)
		return append(out, "\r\n\r\n"...)
	default:
		out := make([]byte, 0, len(body)+24)
		out = append(out, "data: "...)
		out = append(out, body...)
		return append(out, "\n\ndata: [DONE]\n\n"...)
	}
}

type openAIError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    string  `json:"code"`
	} `json:"error"`
}

type anthropicError struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		Reason  string `json:"reason"`
	} `json:"error"`
}

type geminiError struct {
	Error struct {
		Code    int            `json:"code"`
		Message string         `json:"message"`
		Status  string         `json:"status"`
		Details []geminiDetail `json:"details"`
	} `json:"error"`
}

type geminiDetail struct {
	Type   string `json:"@type"`
	Reason string `json:"reason"`
	Domain string `json:"domain"`
}

func renderError(f Format, status int, reason, msg string) []byte {
	var v any
	switch f {
	case FormatAnthropic:
		var e anthropicError
		e.Type = "error"
		e.Error.Type = anthropicErrorType(status)
		e.Error.Message = msg
		e.Error.Reason = reason
		v = e
	case FormatGemini:
		var e geminiError
		e.Error.Code = status
		e.Error.Message = msg
		e.Error.Status = geminiStatus(status)
		e.Error.Details = []geminiDetail{{Type: "type.googleapis.com/google.rpc.ErrorInfo", Reason: reason, Domain: "lurus.cn"}}
		v = e
	default:
		var e openAIError
		e.Error.Message = msg
		e.Error.Type = openAIErrorType(status)
		e.Error.Code = reason
		v = e
	}
	b, _ := json.Marshal(v)
	return b
}

func openAIErrorType(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusPaymentRequired:
		return "insufficient_quota"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	}
	return "server_error"
}

func anthropicErrorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusPaymentRequired:
		return "billing_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusServiceUnavailable:
		return "overloaded_error"
	case http.StatusGatewayTimeout:
		return "timeout_error"
	}
	return "api_error"
}

func geminiStatus(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusPaymentRequired, http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case http.StatusServiceUnavailable, http.StatusBadGateway:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	}
	return "INTERNAL"
}

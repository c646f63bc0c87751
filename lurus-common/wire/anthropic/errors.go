package anthropic

import (
	"encoding/json"
	"net/http"
)

// errorJSON is Anthropic's error body, plus the gateway's stable reason.
type errorJSON struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		Reason  string `json:"reason"`
	} `json:"error"`
}

// RenderError renders {"type":"error","error":{"type","message","reason"}},
// the error type chosen from the status as the Messages API does, so an
// SDK raises the same exception class it would for Anthropic itself.
func (Adapter) RenderError(status int, reason, message string) []byte {
	var e errorJSON
	e.Type = "error"
	e.Error.Type = errorType(status)
	e.Error.Message = message
	e.Error.Reason = reason
	b, _ := json.Marshal(e)
	return b
}

func errorType(status int) string {
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
	case http.StatusServiceUnavailable, 529:
		return "overloaded_error"
	case http.StatusGatewayTimeout:
		return "timeout_error"
	}
	return "api_error"
}

// DecodeError returns the message of an upstream error body (or of a
// stream's error event); "" when the body is not Anthropic's error shape.
func (Adapter) DecodeError(body []byte) string {
	var e errorJSON
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return e.Error.Message
}

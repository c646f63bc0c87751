package gemini

import (
	"encoding/json"
	"net/http"
)

// gError is Google's error body, with the stable reason in an ErrorInfo
// detail: the same shape the gateway renders on its Gemini routes.
type gError struct {
	Error struct {
		Code    int            `json:"code"`
		Message string         `json:"message"`
		Status  string         `json:"status"`
		Details []gErrorDetail `json:"details,omitempty"`
	} `json:"error"`
}

type gErrorDetail struct {
	Type   string `json:"@type"`
	Reason string `json:"reason"`
	Domain string `json:"domain"`
}

// RenderError renders {"error":{"code","message","status","details"}}.
func (a Adapter) RenderError(status int, reason, message string) []byte {
	var e gError
	e.Error.Code = status
	e.Error.Message = message
	e.Error.Status = statusName(status)
	e.Error.Details = []gErrorDetail{{Type: "type.googleapis.com/google.rpc.ErrorInfo", Reason: reason, Domain: "lurus.cn"}}
	b, _ := json.Marshal(e)
	return b
}

// statusName is the google.rpc.Code name of an HTTP status.
func statusName(status int) string {
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

// DecodeError reads the message of an upstream error body: the object
// form, or the one-element array a stream without alt=sse answers with.
func (a Adapter) DecodeError(body []byte) string {
	var e gError
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		return e.Error.Message
	}
	var arr []gError
	if json.Unmarshal(body, &arr) == nil && len(arr) > 0 {
		return arr[0].Error.Message
	}
	return ""
}

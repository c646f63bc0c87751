package openaichat

import (
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"
)

// errorBody is OpenAI's error shape. param is always null: the gateway's
// reason (code) names the problem, the message names the field.
type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    string  `json:"code"`
	} `json:"error"`
}

// RenderError renders an error as OpenAI does, with the stable reason as
// code; the shape is the gateway's for OpenAI routes (embeddings and
// legacy completions share it).
func (Adapter) RenderError(status int, reason, message string) []byte {
	var e errorBody
	e.Error.Message = message
	e.Error.Type = errorType(status)
	e.Error.Code = reason
	b, _ := json.Marshal(e) // HTML-escaped, as every gateway error body
	return b
}

func errorType(status int) string {
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
		// OpenAI's own name for a rate-limit refusal; the stable reason
		// (RATE_LIMITED_RPM, QUOTA_EXCEEDED, …) is the code.
		return "rate_limit_exceeded"
	}
	return "server_error"
}

// maxErrorMessage bounds a message taken from an upstream body.
const maxErrorMessage = 1024

// DecodeError reads the message of an upstream error body:
// {"error":{"message":…}} (OpenAI, Azure), {"error":"…"} or {"message":…}
// (some compatible servers). It returns "" when the body holds none, so
// the caller falls back to its own message rather than relaying an
// arbitrary body.
func (Adapter) DecodeError(body []byte) string {
	var doc struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return ""
	}
	msg := doc.Message
	var obj struct {
		Message string `json:"message"`
	}
	var s string
	switch {
	case json.Unmarshal(doc.Error, &obj) == nil && obj.Message != "":
		msg = obj.Message
	case json.Unmarshal(doc.Error, &s) == nil && s != "":
		msg = s
	}
	return truncate(strings.TrimSpace(msg), maxErrorMessage)
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

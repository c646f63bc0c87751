package mockupstream

import (
	"net/http"
	"strconv"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/jsonstr"
)

// apiFormat is the wire format a request speaks; errors are answered in it.
type apiFormat uint8

const (
	formatOpenAI apiFormat = iota // OpenAI and Azure OpenAI
	formatAnthropic
	formatGemini
)

func (f apiFormat) String() string {
	switch f {
	case formatAnthropic:
		return "anthropic"
	case formatGemini:
		return "gemini"
	}
	return "openai"
}

// writeError answers status with message in the request's own format:
//
//	OpenAI:    {"error":{"message","type","param":null,"code"}}
//	Anthropic: {"type":"error","error":{"type","message"}}
//	Gemini:    {"error":{"code","message","status"}}
//
// The type, code and status strings are the ones each vendor uses for that
// HTTP status.
func (ex *exchange) writeError(status int, message string) {
	b := ex.buf[:0]
	switch ex.format {
	case formatAnthropic:
		b = append(b, `{"type":"error","error":{"type":`...)
		b = jsonstr.Append(b, anthropicErrorType(status))
		b = append(b, `,"message":`...)
		b = jsonstr.Append(b, message)
		b = append(b, `}}`...)
	case formatGemini:
		b = append(b, `{"error":{"code":`...)
		b = appendInt(b, status)
		b = append(b, `,"message":`...)
		b = jsonstr.Append(b, message)
		b = append(b, `,"status":`...)
		b = jsonstr.Append(b, geminiErrorStatus(status))
		b = append(b, `}}`...)
	default:
		typ, code := openAIErrorType(status)
		b = append(b, `{"error":{"message":`...)
		b = jsonstr.Append(b, message)
		b = append(b, `,"type":`...)
		b = jsonstr.Append(b, typ)
		b = append(b, `,"param":null,"code":`...)
		if code == "" {
			b = append(b, "null"...)
		} else {
			b = jsonstr.Append(b, code)
		}
		b = append(b, `}}`...)
	}
	ex.buf = b
	h := ex.w.Header()
	ct := contentTypeJSON
	if ex.format == formatGemini {
		ct = contentTypeGeminiJSON
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if status == http.StatusTooManyRequests {
		// As the vendors do, so tests can check the wait reaches the client.
		h.Set("Retry-After", MockRetryAfter)
	}
	ex.w.WriteHeader(status)
	_, _ = ex.w.Write(b)
}

// MockRetryAfter is the Retry-After (seconds) of every 429 the mock sends.
const MockRetryAfter = "1"

func openAIErrorType(status int) (typ, code string) {
	switch {
	case status == http.StatusUnauthorized:
		return "invalid_request_error", "invalid_api_key"
	case status == http.StatusForbidden:
		return "permission_error", ""
	case status == http.StatusNotFound:
		return "invalid_request_error", "not_found"
	case status == http.StatusTooManyRequests:
		return "requests", "rate_limit_exceeded"
	case status >= 500:
		return "server_error", ""
	}
	return "invalid_request_error", ""
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
	case http.StatusGatewayTimeout:
		return "timeout_error"
	case http.StatusServiceUnavailable, 529:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

func geminiErrorStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusConflict:
		return "ABORTED"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case http.StatusNotImplemented:
		return "UNIMPLEMENTED"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	}
	if status >= 500 {
		return "INTERNAL"
	}
	return "FAILED_PRECONDITION"
}

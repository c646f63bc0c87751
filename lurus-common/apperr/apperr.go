// Package apperr is the one error type every Lurus service returns across
// layer boundaries. An Error carries a Kind (which decides the transport
// status), a stable Reason string from the registry in reasons.go (which
// clients may match on) and a human message. The cause, if any, is kept for
// logs and errors.Is/As but is never rendered to a client.
package apperr

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Kind classifies an error by what the caller can do about it.
type Kind uint8

// The kinds, in the order STYLE.md lists them.
const (
	KindInternal Kind = iota // a fault on our side; details are logged, not shown
	KindInvalid
	KindUnauthenticated
	KindForbidden
	KindNotFound
	KindConflict
	KindRateLimited
	KindInsufficientFunds
	KindUnavailable
	KindTooLarge
	KindTimeout
	KindBadGateway
)

var kindNames = [...]string{
	KindInternal:          "internal",
	KindInvalid:           "invalid",
	KindUnauthenticated:   "unauthenticated",
	KindForbidden:         "forbidden",
	KindNotFound:          "not_found",
	KindConflict:          "conflict",
	KindRateLimited:       "rate_limited",
	KindInsufficientFunds: "insufficient_funds",
	KindUnavailable:       "unavailable",
	KindTooLarge:          "too_large",
	KindTimeout:           "timeout",
	KindBadGateway:        "bad_gateway",
}

// String returns the kind's snake_case name.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// HTTPStatus is the status code an HTTP edge answers with for this kind.
func (k Kind) HTTPStatus() int {
	switch k {
	case KindInvalid:
		return http.StatusBadRequest
	case KindUnauthenticated:
		return http.StatusUnauthorized
	case KindForbidden:
		return http.StatusForbidden
	case KindNotFound:
		return http.StatusNotFound
	case KindConflict:
		return http.StatusConflict
	case KindRateLimited:
		return http.StatusTooManyRequests
	case KindInsufficientFunds:
		return http.StatusPaymentRequired
	case KindUnavailable:
		return http.StatusServiceUnavailable
	case KindTooLarge:
		return http.StatusRequestEntityTooLarge
	case KindTimeout:
		return http.StatusGatewayTimeout
	case KindBadGateway:
		return http.StatusBadGateway
	default:
		return http.StatusInternalServerError
	}
}

// Error is the error type crossing layer boundaries.
type Error struct {
	Kind    Kind
	Reason  Reason
	Message string
	cause   error
	// retryAfter is how long the client should wait before trying again
	// (0: no advice); see WithRetryAfter.
	retryAfter time.Duration
}

// Error implements error. It includes the cause for logs; transports render
// only Reason and Message.
func (e *Error) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Reason, e.Message, e.cause)
	}
	return fmt.Sprintf("%s: %s", e.Reason, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether target is an *Error with the same Reason, so sentinel
// values declared with New can be matched with errors.Is.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == e.Reason
}

// WithRetryAfter returns a copy of e that advises the client to wait d
// before trying again; edges send it as a Retry-After header
// (RetryAfterHeader). A copy, so a shared sentinel is never changed.
func (e *Error) WithRetryAfter(d time.Duration) *Error {
	c := *e
	c.retryAfter = d
	return &c
}

// RetryAfterHeader is the Retry-After header value err advises: whole
// seconds, rounded up, at least 1; "" when err (or the *Error in its
// chain) advises no wait.
func RetryAfterHeader(err error) string {
	var ae *Error
	if !errors.As(err, &ae) || ae.retryAfter <= 0 {
		return ""
	}
	return strconv.FormatInt(int64(max((ae.retryAfter+time.Second-1)/time.Second, 1)), 10)
}

// New returns an error of the reason's registered kind.
func New(r Reason, msg string) *Error {
	return &Error{Kind: r.Kind(), Reason: r, Message: msg}
}

// Newf is New with a formatted message.
func Newf(r Reason, format string, args ...any) *Error {
	return New(r, fmt.Sprintf(format, args...))
}

// Wrap returns an error of the reason's kind that keeps cause for logs.
func Wrap(cause error, r Reason, msg string) *Error {
	return &Error{Kind: r.Kind(), Reason: r, Message: msg, cause: cause}
}

// Internal wraps an unexpected fault. The client sees only a generic message.
func Internal(cause error) *Error {
	return Wrap(cause, ReasonInternal, "internal error")
}

// From returns err as an *Error: itself if it is one (anywhere in its chain),
// otherwise an internal error wrapping it. From(nil) is nil.
func From(err error) *Error {
	if err == nil {
		return nil
	}
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	return Internal(err)
}

// KindOf returns the kind of err (KindInternal for foreign errors).
func KindOf(err error) Kind {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Kind
	}
	return KindInternal
}

// ReasonOf returns the reason of err (ReasonInternal for foreign errors).
func ReasonOf(err error) Reason {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return ReasonInternal
}

// Body is the JSON error body of every non-relay route (DESIGN.md §9).
type Body struct {
	Error BodyError `json:"error"`
}

// BodyError is the inner object of Body.
type BodyError struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// Render returns the status and body an HTTP edge should answer with. An
// internal error never exposes its cause.
func Render(err error) (int, Body) {
	ae := From(err)
	msg := ae.Message
	if ae.Kind == KindInternal {
		msg = "internal error"
	}
	return ae.Kind.HTTPStatus(), Body{Error: BodyError{Reason: string(ae.Reason), Message: msg}}
}

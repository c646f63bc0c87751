package biz

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Header is one HTTP header.
type Header struct{ Key, Value string }

// UpstreamRequest is one attempt as the transport sends it.
type UpstreamRequest struct {
	Provider *Provider
	Method   string
	URL      string
	Headers  []Header
	Body     []byte
	Timeouts Timeouts
}

// UpstreamResponse is an upstream answer whose body is read as it
// arrives. Close releases the connection (reading to the end is not
// required).
type UpstreamResponse interface {
	StatusCode() int
	// Header returns the value of a response header ("" if absent).
	Header(name string) string
	// VisitHeaders calls f for every response header; key and value are
	// valid only during the call.
	VisitHeaders(f func(key, value []byte))
	Body() io.Reader
	Close()
}

// Upstream sends requests to providers. Errors that mean the provider
// could not be reached wrap ErrUpstreamConnect; a first byte that did not
// come in time wraps ErrUpstreamTimeout; a body read that waited longer
// than the idle timeout fails with an error wrapping ErrUpstreamTimeout.
type Upstream interface {
	Do(ctx context.Context, req *UpstreamRequest) (UpstreamResponse, error)
}

// Upstream failure classes.
var (
	ErrUpstreamConnect = errors.New("upstream connect failed")
	ErrUpstreamTimeout = errors.New("upstream timed out")
)

// HoldCode is the outcome of an admission reservation.
type HoldCode int

// HoldResult is what a lease call answered: the outcome, the user's
// availability before it and what the entry holds after it.
type HoldResult struct {
	Code HoldCode
	// AvailableMicros is balance + credit − open reservations before this
	// hold; QuotaRemainingTokens likewise for the token quota (-1: none).
	AvailableMicros      int64
	QuotaRemainingTokens int64
	// HeldMicros is what the entry holds after the call.
	HeldMicros int64
}

// The outcomes (the same as lurus-common/admission codes).
const (
	HoldOK HoldCode = iota
	HoldMissing
	HoldDisabled
	HoldInsufficientBalance
	HoldQuotaExceeded
	HoldKeySpendLimit
)

// Hold is a reservation request.
type Hold struct {
	ID, UserID, KeyID string
	KeyLimitMicros    int64
	Micros, Tokens    int64
	// HeldOutputTokens is the output part of Tokens: the cap upstream is
	// told × choices (0 for endpoints without output).
	HeldOutputTokens int64
	TTL              time.Duration
}

// Admitter holds estimated costs in Redis (the admission mirror shared
// with billing).
type Admitter interface {
	// Lease adds h.Micros and h.Tokens to entry h.ID (creating it) after
	// the balance, quota and key-limit checks; adding nothing renews it.
	Lease(ctx context.Context, h Hold) (HoldResult, error)
	// ReleasePart takes p's amounts out of its entry, once per request id.
	ReleasePart(ctx context.Context, userID string, p Part) error
}

// Part is an amount taken back out of an admission entry.
type Part struct {
	ReservationID, RequestID string
	Micros, Tokens           int64
}

// AccountLoader asks billing to rebuild a user's admission mirror.
type AccountLoader interface {
	LoadAccount(ctx context.Context, userID string) error
}

// TokenCounter counts tokens of text locally (an offline BPE tokenizer).
type TokenCounter interface {
	Count(text []byte) int64
}

// Request statuses of an Outcome (the events.Status* values).
const (
	StatusOK              = "ok"
	StatusUpstreamError   = "upstream_error"
	StatusClientCancelled = "client_cancelled"
	StatusRejected        = "rejected"
)

// Usage sources of an Outcome (the events.UsageSource* values).
const (
	SourceUpstream  = "upstream"
	SourceEstimated = "estimated"
	SourceNone      = "none"
)

// Outcome is everything known about a finished request: the source of its
// billing.usage (when Reserved) and log.write events.
type Outcome struct {
	RequestID string
	// ClientRequestID is the client's own X-Request-Id (logged only).
	ClientRequestID string
	TraceID         string
	UserID          string
	KeyID           string
	Model           string
	UpstreamModel   string
	ProviderID      string
	Format          Format
	Endpoint        Endpoint
	Stream          bool
	StatusCode      int
	ErrorReason     string
	Attempts        int
	StartedAt       time.Time
	FinishedAt      time.Time
	TTFB            time.Duration
	Usage           Usage
	UsageSource     string
	Status          string
	// Reserved is true when the request was admitted as billable: a
	// billing.usage must then be published so billing settles it and
	// releases its hold.
	Reserved bool
	// Admission is what was held for it (empty when admitted without a
	// hold while Redis was down, under fail-open).
	Admission Admission
	// HeldOutputTokens is the output the hold priced (the cap upstream was
	// told × choices); delivered output beyond it was not paid for.
	HeldOutputTokens int64
	ClientIP         netip.Addr
	UserAgent        string
	// Trace is the request's span context, carried into event headers.
	Trace trace.SpanContext

	// ModelLabel is the provider's configured model, glob or alias that
	// matched Model (Candidate.Matched), "" until a candidate was tried.
	// Metrics use it instead of Model, so a caller cannot mint series.
	ModelLabel string
	// UpstreamFormat is the API family of the provider last tried (its
	// log.write upstream_format); it differs from Format when translated.
	UpstreamFormat Format
	// Upstreamed is set once a provider was tried (UpstreamFormat valid).
	Upstreamed bool

	// lim is the request's rate-limit state (nil: no limit in force).
	lim limitState
}

// EventSink takes outcomes; Emit never blocks on the network.
type EventSink interface {
	Emit(o *Outcome)
}

// Metrics receives the relay's measurements.
type Metrics interface {
	Request(route, model, provider string, code int, d time.Duration)
	Upstream(provider string, code int, d time.Duration)
	TTFB(route string, d time.Duration)
	StreamStarted()
	StreamEnded()
	Tokens(u Usage)
	Retry()
	// Admission counts admissions by mode, as LeaseConfig.Observe reports
	// them: "local" (from the key's lease, no round trip), "extended" (the
	// request waited for the lease to be extended in Redis), "reserved"
	// (leasing off: a reservation of its own), and "refill" (a background
	// extension, which admits no request).
	Admission(mode string)
	// OutputCapEnforced counts streams cut at their output allowance
	// because the provider generated past the cap it was told.
	OutputCapEnforced(provider string)
	// UsageOverHold counts answers billed from upstream usage whose output
	// exceeds the allowance that was held: the provider ignored the cap.
	UsageOverHold(provider string)
	// RateLimited counts a refusal by a rate limit of scope ("key",
	// "user", "upstream") and kind ("rpm", "tpm", "concurrency").
	RateLimited(scope, kind string)
	// UpstreamSaturation is the share of an upstream key's tighter limit
	// (RPM or TPM) used, after the last admission against one of
	// provider's keys.
	UpstreamSaturation(provider string, used float64)
}

// ClientWriter is the response to the client, implemented by the HTTP
// layer. Headers set before WriteBody/StartStream are sent with it.
type ClientWriter interface {
	SetHeader(key, value string)
	// WriteBody sends a complete response. It copies body: the caller may
	// reuse it once WriteBody returns.
	WriteBody(status int, contentType string, body []byte)
	// StartStream sends the status and headers of a streamed response.
	StartStream(status int, contentType string) error
	// WriteChunk sends one unit of a stream and flushes it.
	WriteChunk(p []byte) error
}

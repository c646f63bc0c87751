package events

import "time"

// Message types.
const (
	TypeBillingUsage = "billing.usage"
	TypeLogWrite     = "log.write"
)

// User event types (published by billing-service on events.user.<id>.<type>).
const (
	TypeQuotaUpdated   = "quota.updated"
	TypeBalanceChanged = "balance.changed"
	TypeUsageRecorded  = "usage.recorded"
	TypeQuotaLow       = "quota.low"
	TypeQuotaExhausted = "quota.exhausted"
)

// UserEventTypes lists every user event type.
var UserEventTypes = []string{TypeQuotaUpdated, TypeBalanceChanged, TypeUsageRecorded, TypeQuotaLow, TypeQuotaExhausted}

// Usage sources.
const (
	UsageSourceUpstream  = "upstream"  // the upstream's own usage fields
	UsageSourceEstimated = "estimated" // counted locally (no usage from upstream)
	UsageSourceNone      = "none"      // nothing was delivered; nothing to bill
)

// Request statuses in billing.usage.
const (
	StatusOK              = "ok"               // completed normally
	StatusUpstreamError   = "upstream_error"   // failed; billed for what was delivered
	StatusClientCancelled = "client_cancelled" // client went away; billed for what upstream produced
	StatusRejected        = "rejected"         // refused before relaying; nothing billed
)

// Usage is the data of a billing.usage message: one per relayed request.
//
// Token semantics are normalized across API formats, OpenAI style:
// PromptTokens counts every input token, including CachedTokens (read from a
// prompt cache) and CacheWriteTokens (written to one); CompletionTokens counts
// every output token, including ReasoningTokens. The gateway converts
// Anthropic (input_tokens excludes cache reads and writes) and Gemini
// (candidatesTokenCount excludes thoughtsTokenCount) to this form.
type Usage struct {
	RequestID        string `json:"request_id"`
	UserID           string `json:"user_id"`
	KeyID            string `json:"key_id"`
	Model            string `json:"model"`
	UpstreamModel    string `json:"upstream_model"`
	ProviderID       string `json:"provider_id"`
	APIFormat        string `json:"api_format"` // openai | anthropic | gemini
	Endpoint         string `json:"endpoint"`
	Stream           bool   `json:"stream"`
	PromptTokens     int64  `json:"prompt_tokens"`
	CompletionTokens int64  `json:"completion_tokens"`
	CachedTokens     int64  `json:"cached_tokens"`
	CacheWriteTokens int64  `json:"cache_write_tokens"`
	ReasoningTokens  int64  `json:"reasoning_tokens"`
	UsageSource      string `json:"usage_source"`
	Status           string `json:"status"`
	// ReservationID is the admission entry holding this request's
	// estimate: its own reservation, or its gateway's lease for the key.
	ReservationID string `json:"reservation_id"`
	// ReservedMicros and ReservedTokens are the estimate held for this
	// request; billing takes exactly that back out of ReservationID when it
	// settles (0: release the whole entry, for reservations of one request).
	ReservedMicros int64     `json:"reserved_micros,omitempty"`
	ReservedTokens int64     `json:"reserved_tokens,omitempty"`
	StartedAt      time.Time `json:"started_at"`
	FinishedAt     time.Time `json:"finished_at"`
}

// LogRecord is the data of a log.write message: one per request, refused
// ones included. It never carries prompt or completion text.
type LogRecord struct {
	RequestID        string    `json:"request_id"`
	TraceID          string    `json:"trace_id"`
	UserID           string    `json:"user_id"`
	KeyID            string    `json:"key_id"`
	Model            string    `json:"model"`
	UpstreamModel    string    `json:"upstream_model"`
	ProviderID       string    `json:"provider_id"`
	APIFormat        string    `json:"api_format"`
	Endpoint         string    `json:"endpoint"`
	Stream           bool      `json:"stream"`
	StatusCode       int       `json:"status_code"`
	ErrorReason      string    `json:"error_reason"`
	Attempts         int       `json:"attempts"`
	LatencyMs        int64     `json:"latency_ms"`
	TTFBMs           int64     `json:"ttfb_ms"`
	PromptTokens     int64     `json:"prompt_tokens"`
	CompletionTokens int64     `json:"completion_tokens"`
	CachedTokens     int64     `json:"cached_tokens"`
	CacheWriteTokens int64     `json:"cache_write_tokens"`
	ReasoningTokens  int64     `json:"reasoning_tokens"`
	UsageSource      string    `json:"usage_source"`
	ClientIP         string    `json:"client_ip"`
	UserAgent        string    `json:"user_agent"`
	CreatedAt        time.Time `json:"created_at"`

	// UpstreamFormat is the API family of the provider that served the
	// call (openai | anthropic | gemini; empty when none was tried). It
	// differs from APIFormat, the client's, when the call was translated.
	UpstreamFormat string `json:"upstream_format,omitempty"`
}

// BalanceChanged is the data of a balance.changed user event.
type BalanceChanged struct {
	BalanceMicros  int64  `json:"balance_micros"`
	DeltaMicros    int64  `json:"delta_micros"`
	ReservedMicros int64  `json:"reserved_micros"`
	Kind           string `json:"kind"` // topup | adjust | usage | refund
	LedgerEntryID  string `json:"ledger_entry_id"`
	RequestID      string `json:"request_id,omitempty"`
}

// QuotaUpdated is the data of a quota.updated user event.
type QuotaUpdated struct {
	QuotaLimitTokens     int64     `json:"quota_limit_tokens"`
	QuotaUsedTokens      int64     `json:"quota_used_tokens"`
	QuotaRemainingTokens int64     `json:"quota_remaining_tokens"`
	PeriodStart          time.Time `json:"period_start"`
}

// UsageRecorded is the data of a usage.recorded user event.
type UsageRecorded struct {
	RequestID        string `json:"request_id"`
	KeyID            string `json:"key_id"`
	Model            string `json:"model"`
	PromptTokens     int64  `json:"prompt_tokens"`
	CompletionTokens int64  `json:"completion_tokens"`
	CachedTokens     int64  `json:"cached_tokens"`
	CacheWriteTokens int64  `json:"cache_write_tokens"`
	ReasoningTokens  int64  `json:"reasoning_tokens"`
	CostMicros       int64  `json:"cost_micros"`
	UsageSource      string `json:"usage_source"`
}

// Threshold kinds in quota.low and quota.exhausted.
const (
	ThresholdQuota   = "quota"   // the token quota
	ThresholdBalance = "balance" // balance vs low-balance threshold / credit
)

// QuotaLow is the data of a quota.low user event, sent on the first crossing
// of 80 % of the token quota or of the low-balance threshold in a period.
type QuotaLow struct {
	Threshold            string `json:"threshold"` // quota | balance
	QuotaLimitTokens     int64  `json:"quota_limit_tokens,omitempty"`
	QuotaUsedTokens      int64  `json:"quota_used_tokens,omitempty"`
	BalanceMicros        int64  `json:"balance_micros"`
	LowBalanceThreshold  int64  `json:"low_balance_threshold_micros,omitempty"`
	QuotaRemainingTokens int64  `json:"quota_remaining_tokens,omitempty"`
}

// QuotaExhausted is the data of a quota.exhausted user event: the token
// quota is used up, or balance plus credit is no longer positive.
type QuotaExhausted struct {
	Threshold         string `json:"threshold"` // quota | balance
	QuotaLimitTokens  int64  `json:"quota_limit_tokens,omitempty"`
	QuotaUsedTokens   int64  `json:"quota_used_tokens,omitempty"`
	BalanceMicros     int64  `json:"balance_micros"`
	CreditLimitMicros int64  `json:"credit_limit_micros"`
}

// ProviderChanged is the body of a provider.changed core-NATS message.
type ProviderChanged struct {
	Version    int64  `json:"version"`
	ProviderID string `json:"provider_id,omitempty"`
}

// KeyChanged is the body of a key.changed core-NATS message. A gateway
// evicts every cache entry of KeyID (or of every key of UserID when KeyID is
// empty, e.g. a user was disabled or changed group).
type KeyChanged struct {
	KeyID  string `json:"key_id,omitempty"`
	UserID string `json:"user_id"`
}

// PriceChanged is the body of the core-NATS price.changed notification:
// gateways refetch GET /internal/v1/prices when Version is newer than theirs.
type PriceChanged struct {
	Version int64 `json:"version"`
}

// Package biz holds billing-service's domain: users, API keys, prices, the
// ledger and the rules that move money and quota (settlement, top-ups,
// threshold alerts, quota periods). It declares the repository interfaces
// it needs; internal/data implements them. It imports no transport or
// driver package.
package biz

import (
	"errors"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit"

	"github.com/oklog/ulid/v2"
)

// ID prefixes (IDs are prefix + ULID, valid NATS subject tokens).
const (
	PrefixUser   = "usr_"
	PrefixKey    = "key_"
	PrefixPrice  = "prc_"
	PrefixLedger = "led_"
)

// NewID returns prefix followed by a new ULID. ULIDs from one process are
// monotonic, so ids made in one transaction sort in creation order.
func NewID(prefix string) string { return prefix + ulid.Make().String() }

// User statuses.
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
)

// Key statuses.
const (
	KeyActive  = "active"
	KeyRevoked = "revoked"
)

// Ledger entry kinds (DESIGN.md §9).
const (
	KindTopup  = "topup"
	KindAdjust = "adjust"
	KindUsage  = "usage"
	KindRefund = "refund"
)

// Alert flags: threshold crossings already announced, so each fires once
// (User.AlertFlags).
const (
	AlertQuotaLow = 1 << iota
	AlertQuotaExhausted
	AlertBalanceLow
	AlertBalanceExhausted
)

// Errors a settlement can end a usage with; the consumer dead-letters them.
var (
	// ErrNoPrice: the usage's model has no price and no default is configured.
	// It is never billed as free.
	ErrNoPrice = errors.New("no price for model and no default price")
	// ErrUnknownUser: the usage names a user that does not exist.
	ErrUnknownUser = errors.New("unknown user")
	// ErrInvalidUsage: the usage lacks a request id or user, or has negative counts.
	ErrInvalidUsage = errors.New("invalid usage")
	// ErrTokensOverCeiling: the upstream reported more tokens than one
	// request may use (Rules.MaxTokensPerRequest). Such usage is absurd
	// (a broken or hostile upstream); it is dead-lettered with an alert for
	// an operator to look at, not settled.
	ErrTokensOverCeiling = errors.New("usage over the per-request token ceiling")
	// ErrCostOverCeiling: the usage costs more than one request may cost
	// (Rules.MaxCostMicrosPerRequest), or more than an int64 holds.
	ErrCostOverCeiling = errors.New("usage over the per-request cost ceiling")
	// ErrOverflow: booking the change would take a sum (balance, quota
	// used, key spend) out of the int64 range. Nothing is written.
	ErrOverflow = apperr.New(apperr.ReasonAmountOutOfRange, "the amount would take a sum out of range")
)

// IsOverflow reports whether err is a refusal because a sum would leave
// its range: an arithmetic overflow found in Go or in PostgreSQL, or a
// balance bound. Such an error does not go away on retry.
func IsOverflow(err error) bool {
	r := apperr.ReasonOf(err)
	return r == apperr.ReasonAmountOutOfRange || r == apperr.ReasonBalanceOutOfRange
}

// User is an account: balance, credit, token quota and alert state.
type User struct {
	ID                        string    `json:"id"`
	Name                      string    `json:"name"`
	Email                     string    `json:"email"`
	Status                    string    `json:"status"`
	Group                     string    `json:"group"`
	BalanceMicros             int64     `json:"balance_micros"`
	CreditLimitMicros         int64     `json:"credit_limit_micros"`
	QuotaLimitTokens          int64     `json:"quota_limit_tokens"`
	QuotaUsedTokens           int64     `json:"quota_used_tokens"`
	PeriodStart               time.Time `json:"period_start"`
	LowBalanceThresholdMicros int64     `json:"low_balance_threshold_micros"`
	// Limits are the user's own rate limits (rpm_limit, tpm_limit,
	// concurrency_limit; 0: none of its own, see LimitRules.User).
	ratelimit.Limits
	AlertFlags  int       `json:"-"`
	Version     int64     `json:"version"`
	LastEventID string    `json:"last_event_id"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Active reports whether the user may spend.
func (u *User) Active() bool { return u.Status == StatusActive }

// QuotaRemaining is limit − used (never negative), or 0 without a quota.
func (u *User) QuotaRemaining() int64 {
	if u.QuotaLimitTokens <= 0 {
		return 0
	}
	return max(0, u.QuotaLimitTokens-u.QuotaUsedTokens)
}

// Key is an API key as stored: never the key itself, only its keyed hash
// and display prefix.
type Key struct {
	ID               string     `json:"id"`
	UserID           string     `json:"user_id"`
	Name             string     `json:"name"`
	Prefix           string     `json:"prefix"`
	Status           string     `json:"status"`
	Models           []string   `json:"models"`
	AllowedIPs       []string   `json:"allowed_ips"`
	ExpiresAt        *time.Time `json:"expires_at"`
	SpendLimitMicros int64      `json:"spend_limit_micros"`
	SpentMicros      int64      `json:"spent_micros"`
	// Limits are the key's own rate limits (0: none of its own); what is
	// in force is LimitRules.Key.
	ratelimit.Limits
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// LedgerEntry is one change of a balance. The sum of a user's entries is
// the user's balance, always.
type LedgerEntry struct {
	ID                 string    `json:"id"`
	UserID             string    `json:"user_id"`
	Kind               string    `json:"kind"`
	AmountMicros       int64     `json:"amount_micros"`
	BalanceAfterMicros int64     `json:"balance_after_micros"`
	RequestID          string    `json:"request_id,omitempty"`
	Note               string    `json:"note,omitempty"`
	CreatedAt          time.Time `json:"created_at"`
}

// UsageRecord is a settled billing.usage event with its cost.
type UsageRecord struct {
	events.Usage
	CostMicros int64 `json:"cost_micros"`
}

// UsageStat is one row of the usage statistics: a user, a model, a day.
type UsageStat struct {
	Day              string `json:"day"`
	UserID           string `json:"user_id"`
	Model            string `json:"model"`
	Requests         int64  `json:"requests"`
	PromptTokens     int64  `json:"prompt_tokens"`
	CompletionTokens int64  `json:"completion_tokens"`
	CostMicros       int64  `json:"cost_micros"`
}

// PeriodStart is the start of the monthly quota period containing t (UTC).
func PeriodStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// Page asks for one page of a list: at most Limit items after Cursor.
type Page struct {
	Limit  int
	Cursor string
}

// UsageFilter selects usage records; zero fields do not filter.
type UsageFilter struct {
	UserID string
	Model  string
	From   time.Time
	To     time.Time
}

// PostRequest is a top-up or adjustment carrying an idempotency key.
type PostRequest struct {
	UserID       string
	Kind         string // biz.KindTopup or biz.KindAdjust
	AmountMicros int64
	Note         string
	IdemKey      string
	// RequestHash identifies the request (route and body): a key reused
	// with another hash is refused.
	RequestHash string
}

// PostResult is the answer to a PostRequest: the first result when the
// key was seen before.
type PostResult struct {
	Status   int
	Body     []byte
	Replayed bool
	Effects  Effects
}

// Package internalapi holds the request and response bodies of the
// service-to-service routes (DESIGN.md §2: Authorization: Bearer
// $LURUS_INTERNAL_TOKEN, never exposed through the public ingress) and a
// small client for them. Servers and clients share these types so the two
// sides cannot drift.
package internalapi

import (
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/pricing"
	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit"
)

// Routes.
const (
	RouteVerifyKey        = "/internal/v1/keys/verify"        // POST, billing-service
	RoutePrices           = "/internal/v1/prices"             // GET, billing-service
	RouteLoadAccount      = "/internal/v1/admission/load"     // POST, billing-service
	RouteSyncState        = "/internal/v1/sync/"              // GET + user id, billing-service
	RouteProviderSnapshot = "/internal/v1/providers/snapshot" // GET, provider-service
)

// VerifyKeyRequest asks billing whether a key is valid. Callers send the
// key's peppered hash (apikey.Hash), so the key itself never crosses the
// network again after the client sent it; exactly one field is set. Key is
// still accepted from callers built before key_hash existed.
type VerifyKeyRequest struct {
	Key     string `json:"key,omitempty"`
	KeyHash string `json:"key_hash,omitempty"`
}

// VerifyKeyResponse describes a valid key and its user. An unknown or
// revoked key is answered 401 with an apperr body instead.
type VerifyKeyResponse struct {
	KeyID     string `json:"key_id"`
	UserID    string `json:"user_id"`
	UserGroup string `json:"user_group"`
	// UserActive is false for a disabled user (the gateway answers 403).
	UserActive bool       `json:"user_active"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	// Models is the key's allow-list of model globs (empty: every model).
	Models []string `json:"models"`
	// AllowedIPs is the key's allow-list of CIDRs (empty: any address).
	AllowedIPs       []string `json:"allowed_ips"`
	SpendLimitMicros int64    `json:"spend_limit_micros"`
	// KeyLimits are the limits in force for the subject "key:<key_id>":
	// the key's own, each held under its user's (ratelimit.Limits.Within),
	// so a key never has more room than its user.
	KeyLimits ratelimit.Limits `json:"key_limits"`
	// UserLimits are the limits in force for the subject "user:<user_id>",
	// shared by every key of the user: the user's own, or its group's
	// defaults from billing config where the user has none. 0 is unlimited.
	UserLimits ratelimit.Limits `json:"user_limits"`
}

// PriceTable is the body of GET /internal/v1/prices: everything the gateway
// needs to estimate a reservation with pricing.Table.
type PriceTable struct {
	Version             int64            `json:"version"`
	Prices              []pricing.Price  `json:"prices"`
	Default             *pricing.Price   `json:"default,omitempty"`
	GroupMultipliersBps map[string]int64 `json:"group_multipliers_bps"`
}

// Table builds the pricing table.
func (p PriceTable) Table() *pricing.Table {
	return pricing.NewTable(p.Prices, p.Default, p.GroupMultipliersBps, p.Version)
}

// LoadAccountRequest asks billing to (re)write a user's admission mirror in
// Redis, after the gateway found it missing (e.g. Redis was flushed).
type LoadAccountRequest struct {
	UserID string `json:"user_id"`
}

// SyncState is a user's full current state: the answer of
// GET /api/v1/billing/sync/:user_id, of GET /internal/v1/sync/<user_id>
// (sync-service's sync_request) and the "sync_state" WebSocket message.
type SyncState struct {
	UserID               string    `json:"user_id"`
	BalanceMicros        int64     `json:"balance_micros"`
	CreditLimitMicros    int64     `json:"credit_limit_micros"`
	ReservedMicros       int64     `json:"reserved_micros"`
	QuotaLimitTokens     int64     `json:"quota_limit_tokens"`
	QuotaUsedTokens      int64     `json:"quota_used_tokens"`
	QuotaRemainingTokens int64     `json:"quota_remaining_tokens"`
	PeriodStart          time.Time `json:"period_start"`
	// LastEventID is the id of the newest user event published for this
	// user ("" if none): a client resumes the event streams from it.
	LastEventID string    `json:"last_event_id"`
	AsOf        time.Time `json:"as_of"`
}

// Provider types.
const (
	TypeOpenAI           = "openai"
	TypeAzureOpenAI      = "azure-openai"
	TypeAnthropic        = "anthropic"
	TypeGemini           = "gemini"
	TypeOpenAICompatible = "openai-compatible"
)

// ProviderTypes lists every provider type.
var ProviderTypes = []string{TypeOpenAI, TypeAzureOpenAI, TypeAnthropic, TypeGemini, TypeOpenAICompatible}

// Snapshot is the body of GET /internal/v1/providers/snapshot: every
// enabled provider with its enabled keys decrypted.
type Snapshot struct {
	Version     int64      `json:"version"`
	GeneratedAt time.Time  `json:"generated_at"`
	Providers   []Provider `json:"providers"`
}

// Provider is one upstream as the gateway needs it.
type Provider struct {
	ID                  string            `json:"id"`
	Name                string            `json:"name"`
	Type                string            `json:"type"`
	BaseURL             string            `json:"base_url"`
	APIVersion          string            `json:"api_version,omitempty"`
	Keys                []ProviderKey     `json:"keys"`
	Models              []string          `json:"models"`
	ModelMapping        map[string]string `json:"model_mapping"`
	Priority            int               `json:"priority"`
	Weight              int               `json:"weight"`
	Timeouts            Timeouts          `json:"timeouts"`
	Headers             map[string]string `json:"headers"`
	AllowPrivateNetwork bool              `json:"allow_private_network"`
	// PassthroughOnly opts the provider out of protocol translation: it
	// serves only clients that speak its own API family (an admin's choice
	// for a server whose quirks translation would not honour). False, the
	// zero value, is also what a snapshot without the field means, so an
	// older provider-service keeps every provider reachable.
	PassthroughOnly bool `json:"passthrough_only"`
}

// ProviderKey is an enabled upstream API key, decrypted, with the limits
// of the upstream account's tier (0: unlimited) that the gateway keeps it
// under as the subject "upkey:<id>".
type ProviderKey struct {
	ID       string `json:"id"`
	Key      string `json:"key"`
	RPMLimit int64  `json:"rpm_limit"`
	TPMLimit int64  `json:"tpm_limit"`
}

// Limits are the key's limits as ratelimit sees them.
func (k ProviderKey) Limits() ratelimit.Limits {
	return ratelimit.Limits{RPM: k.RPMLimit, TPM: k.TPMLimit}
}

// Timeouts of calls to a provider, in milliseconds (0: the gateway default).
type Timeouts struct {
	ConnectMs   int64 `json:"connect_ms"`
	FirstByteMs int64 `json:"first_byte_ms"`
	IdleMs      int64 `json:"idle_ms"`
	TotalMs     int64 `json:"total_ms"`
}

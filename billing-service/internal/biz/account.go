package biz

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/eventid"
	"github.com/lurus-switch/lurus-switch/lurus-common/money"
	"github.com/lurus-switch/lurus-switch/lurus-common/pricing"
)

// OutboxEvent is a user event written to the outbox in the transaction of
// the change that caused it and published after commit.
type OutboxEvent struct {
	ID       string
	UserID   string
	Type     string
	Envelope []byte // the JSON envelope, exactly as published
}

// Mirror is the admission state of one user to write into Redis after
// commit, with the reservations the change settled.
type Mirror struct {
	UserID           string
	BalanceMicros    int64
	CreditMicros     int64
	QuotaLimitTokens int64
	QuotaUsedTokens  int64
	Active           bool
	Version          int64
	KeySpentMicros   map[string]int64
	ReleaseIDs       []string
	// Parts take settled requests' estimates out of the gateways' leases.
	Parts []admission.PartRelease
}

// MirrorOf is the admission state of u (without key spends).
func MirrorOf(u *User) Mirror {
	return Mirror{UserID: u.ID, BalanceMicros: u.BalanceMicros, CreditMicros: u.CreditLimitMicros,
		QuotaLimitTokens: u.QuotaLimitTokens, QuotaUsedTokens: u.QuotaUsedTokens, Active: u.Active(), Version: u.Version}
}

// Effects is the work left after a commit: mirror writes, events to
// publish, key caches to evict, a new price version to announce.
type Effects struct {
	Mirrors      []Mirror
	Events       []OutboxEvent
	OutboxRows   []string // outbox rows holding Events, deleted once published
	KeyChanges   []events.KeyChanged
	PriceVersion int64
}

// Merge appends o to e.
func (e *Effects) Merge(o Effects) {
	e.Mirrors = append(e.Mirrors, o.Mirrors...)
	e.Events = append(e.Events, o.Events...)
	e.OutboxRows = append(e.OutboxRows, o.OutboxRows...)
	e.KeyChanges = append(e.KeyChanges, o.KeyChanges...)
	e.PriceVersion = max(e.PriceVersion, o.PriceVersion)
}

// Rules are the configurable money rules.
type Rules struct {
	// QuotaLowPercent of the token quota triggers quota.low (80).
	QuotaLowPercent int64
	// MaxTokensPerRequest is the most tokens one usage may report, each
	// count and prompt + completion alike (0: DefaultMaxTokensPerRequest).
	MaxTokensPerRequest int64
	// MaxCostMicrosPerRequest is the most one usage may cost (0:
	// DefaultMaxCostMicrosPerRequest).
	MaxCostMicrosPerRequest int64
}

// Default per-request ceilings: no real request comes near them (a million
// -token context with a long answer is ~10^6 tokens and tens of dollars),
// and they keep one bogus report from moving a balance far.
const (
	DefaultMaxTokensPerRequest     int64 = 10_000_000
	DefaultMaxCostMicrosPerRequest int64 = 10_000_000_000 // $10,000
)

// CheckTokens refuses a usage reporting more tokens than one request may
// use (ErrTokensOverCeiling). Call it after CheckUsage.
func (r Rules) CheckTokens(u events.Usage) error {
	limit := r.MaxTokensPerRequest
	if limit <= 0 {
		limit = DefaultMaxTokensPerRequest
	}
	total, err := money.Add(u.PromptTokens, u.CompletionTokens)
	if err != nil || total > limit {
		return fmt.Errorf("%w: prompt %d + completion %d tokens > %d", ErrTokensOverCeiling, u.PromptTokens, u.CompletionTokens, limit)
	}
	for _, n := range []int64{u.CachedTokens, u.CacheWriteTokens, u.ReasoningTokens} {
		if n > limit {
			return fmt.Errorf("%w: a token count of %d > %d", ErrTokensOverCeiling, n, limit)
		}
	}
	return nil
}

// CheckCost refuses a cost above what one request may cost
// (ErrCostOverCeiling).
func (r Rules) CheckCost(cost int64) error {
	limit := r.MaxCostMicrosPerRequest
	if limit <= 0 {
		limit = DefaultMaxCostMicrosPerRequest
	}
	if cost > limit {
		return fmt.Errorf("%w: %d micro-USD > %d", ErrCostOverCeiling, cost, limit)
	}
	return nil
}

// Account applies changes to one user locked in a transaction and records
// what they produce: ledger entries, user events and the alerts state. The
// caller writes U, Ledger and Events in the same transaction, bumps nothing
// itself: Touch marks the user changed (its version is bumped once).
type Account struct {
	U      *User
	Ledger []LedgerEntry
	Events []OutboxEvent
	// Changed is set once anything the admission mirror holds changed.
	Changed bool
	// OutboxRow is the outbox row the data layer stored Events in.
	OutboxRow string

	rules Rules
	now   time.Time
}

// NewAccount starts changes to u at now. A quota period that has rolled
// over is reset first.
func NewAccount(u *User, rules Rules, now time.Time) (*Account, error) {
	a := &Account{U: u, rules: rules, now: now.UTC()}
	if err := a.rollPeriod(); err != nil {
		return nil, err
	}
	return a, nil
}

// rollPeriod resets the quota when now is in a later month than the
// user's period start, and announces it when the user has a quota.
func (a *Account) rollPeriod() error {
	start := PeriodStart(a.now)
	if !start.After(a.U.PeriodStart) {
		return nil
	}
	a.U.PeriodStart = start
	a.U.AlertFlags &^= AlertQuotaLow | AlertQuotaExhausted
	if a.U.QuotaUsedTokens == 0 {
		return nil
	}
	a.U.QuotaUsedTokens = 0
	a.touch()
	if a.U.QuotaLimitTokens > 0 {
		return a.emit(events.TypeQuotaUpdated, a.quotaUpdated())
	}
	return nil
}

// Rolled reports whether NewAccount reset the period (the caller must then
// write the user even when nothing else changes).
func (a *Account) Rolled() bool { return a.Changed }

func (a *Account) touch() {
	if !a.Changed {
		a.Changed = true
		a.U.Version++
	}
}

func (a *Account) emit(typ string, data any) error {
	id := eventid.New()
	env, err := events.NewEnvelope(id, typ, a.U.ID, a.now, data)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(env)
	if err != nil {
		return fmt.Errorf("biz: marshal %s: %w", typ, err)
	}
	a.Events = append(a.Events, OutboxEvent{ID: id, UserID: a.U.ID, Type: typ, Envelope: raw})
	a.U.LastEventID = id
	return nil
}

func (a *Account) quotaUpdated() events.QuotaUpdated {
	return events.QuotaUpdated{QuotaLimitTokens: a.U.QuotaLimitTokens, QuotaUsedTokens: a.U.QuotaUsedTokens,
		QuotaRemainingTokens: a.U.QuotaRemaining(), PeriodStart: a.U.PeriodStart}
}

// post writes a ledger entry of amount (≠ 0) and announces the new balance.
// A balance that would not fit in an int64 is ErrOverflow, and nothing
// changes.
func (a *Account) post(kind string, amount int64, requestID, note string) (LedgerEntry, error) {
	bal, err := money.Add(a.U.BalanceMicros, amount)
	if err != nil {
		return LedgerEntry{}, ErrOverflow
	}
	a.U.BalanceMicros = bal
	e := LedgerEntry{ID: NewID(PrefixLedger), UserID: a.U.ID, Kind: kind, AmountMicros: amount,
		BalanceAfterMicros: a.U.BalanceMicros, RequestID: requestID, Note: note, CreatedAt: a.now}
	a.Ledger = append(a.Ledger, e)
	a.touch()
	err = a.emit(events.TypeBalanceChanged, events.BalanceChanged{BalanceMicros: a.U.BalanceMicros,
		DeltaMicros: amount, Kind: kind, LedgerEntryID: e.ID, RequestID: requestID})
	return e, err
}

// Post books a top-up, adjustment or refund of amount micro-USD: 0 <
// |amount| ≤ money.MaxAmount (AMOUNT_OUT_OF_RANGE), and a credit may not
// take the balance above money.MaxBalance nor a debit below −MaxBalance
// (BALANCE_OUT_OF_RANGE, 409: the same amount fits another balance).
// Together with the per-request cost ceiling this keeps every balance far
// inside the int64 range and exact in the admission mirror's doubles.
func (a *Account) Post(kind string, amount int64, note string) (LedgerEntry, error) {
	if amount == 0 {
		return LedgerEntry{}, fmt.Errorf("biz: zero ledger amount")
	}
	if amount > money.MaxAmount || amount < -money.MaxAmount {
		return LedgerEntry{}, apperr.Newf(apperr.ReasonAmountOutOfRange, "amount_micros must be within ±%d", money.MaxAmount)
	}
	// |balance| ≤ MaxBalance is not guaranteed for a balance usage drove
	// down, so the sum is checked before it is compared.
	if bal, err := money.Add(a.U.BalanceMicros, amount); err != nil || amount > 0 && bal > money.MaxBalance || amount < 0 && bal < -money.MaxBalance {
		return LedgerEntry{}, apperr.Newf(apperr.ReasonBalanceOutOfRange,
			"the balance of %d micro-USD would leave ±%d", a.U.BalanceMicros, money.MaxBalance)
	}
	e, err := a.post(kind, amount, "", note)
	if err != nil {
		return e, err
	}
	return e, a.checkThresholds()
}

// Charge settles one recorded usage at cost: a usage ledger entry (when
// cost > 0), the quota, and the events. A refused request or one without
// tokens changes nothing. It returns the ledger entry (zero when nothing
// was debited).
func (a *Account) Charge(u events.Usage, cost int64) (LedgerEntry, error) {
	var entry LedgerEntry
	tokens, err := money.Add(u.PromptTokens, u.CompletionTokens)
	if err != nil {
		return entry, ErrOverflow
	}
	if u.Status == events.StatusRejected || tokens == 0 && cost == 0 {
		return entry, nil
	}
	// Every sum is checked before anything changes, so a refusal leaves
	// the account as it was.
	used, err := money.Add(a.U.QuotaUsedTokens, tokens)
	if err != nil {
		return entry, ErrOverflow
	}
	if _, err := money.Add(a.U.BalanceMicros, -cost); err != nil {
		return entry, ErrOverflow
	}
	if err := a.emit(events.TypeUsageRecorded, events.UsageRecorded{RequestID: u.RequestID, KeyID: u.KeyID,
		Model: u.Model, PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens,
		CachedTokens: u.CachedTokens, CacheWriteTokens: u.CacheWriteTokens, ReasoningTokens: u.ReasoningTokens,
		CostMicros: cost, UsageSource: u.UsageSource}); err != nil {
		return entry, err
	}
	if cost > 0 {
		if entry, err = a.post(KindUsage, -cost, u.RequestID, ""); err != nil {
			return entry, err
		}
	}
	if tokens > 0 {
		a.U.QuotaUsedTokens = used
		a.touch()
		if a.U.QuotaLimitTokens > 0 {
			if err := a.emit(events.TypeQuotaUpdated, a.quotaUpdated()); err != nil {
				return entry, err
			}
		}
	}
	return entry, a.checkThresholds()
}

// SetLimits applies a change of credit limit, quota limit, low-balance
// threshold, status or group made by an admin. It reports whether the
// user's keys must be re-verified (status or group changed).
func (a *Account) SetLimits(credit, quota, lowBalance int64, status, group string) (bool, error) {
	u := a.U
	keysChanged := u.Status != status || u.Group != group
	quotaChanged := u.QuotaLimitTokens != quota
	if u.CreditLimitMicros != credit || quotaChanged || u.Status != status {
		a.touch()
	}
	u.CreditLimitMicros, u.QuotaLimitTokens, u.LowBalanceThresholdMicros = credit, quota, lowBalance
	u.Status, u.Group = status, group
	if quotaChanged {
		if err := a.emit(events.TypeQuotaUpdated, a.quotaUpdated()); err != nil {
			return keysChanged, err
		}
	}
	return keysChanged, a.checkThresholds()
}

// checkThresholds announces first crossings (quota.low at QuotaLowPercent
// of the quota or at the low-balance threshold; quota.exhausted when the
// quota is used up or balance + credit ≤ 0) and re-arms an alert once its
// condition no longer holds, so every crossing is announced exactly once.
func (a *Account) checkThresholds() error {
	u := a.U
	pct := a.rules.QuotaLowPercent
	if pct <= 0 {
		pct = 80
	}
	type check struct {
		flag int
		on   bool
		typ  string
		data func() any
	}
	quota := u.QuotaLimitTokens > 0
	checks := []check{
		// used·100 ≥ limit·pct without multiplying the unbounded used count
		{AlertQuotaLow, quota && u.QuotaUsedTokens >= ceilPercent(u.QuotaLimitTokens, pct), events.TypeQuotaLow, func() any {
			return events.QuotaLow{Threshold: events.ThresholdQuota, QuotaLimitTokens: u.QuotaLimitTokens,
				QuotaUsedTokens: u.QuotaUsedTokens, QuotaRemainingTokens: u.QuotaRemaining(), BalanceMicros: u.BalanceMicros}
		}},
		{AlertQuotaExhausted, quota && u.QuotaUsedTokens >= u.QuotaLimitTokens, events.TypeQuotaExhausted, func() any {
			return events.QuotaExhausted{Threshold: events.ThresholdQuota, QuotaLimitTokens: u.QuotaLimitTokens,
				QuotaUsedTokens: u.QuotaUsedTokens, BalanceMicros: u.BalanceMicros, CreditLimitMicros: u.CreditLimitMicros}
		}},
		{AlertBalanceLow, u.LowBalanceThresholdMicros > 0 && u.BalanceMicros <= u.LowBalanceThresholdMicros, events.TypeQuotaLow, func() any {
			return events.QuotaLow{Threshold: events.ThresholdBalance, BalanceMicros: u.BalanceMicros,
				LowBalanceThreshold: u.LowBalanceThresholdMicros}
		}},
		{AlertBalanceExhausted, u.BalanceMicros+u.CreditLimitMicros <= 0, events.TypeQuotaExhausted, func() any {
			return events.QuotaExhausted{Threshold: events.ThresholdBalance, BalanceMicros: u.BalanceMicros,
				CreditLimitMicros: u.CreditLimitMicros}
		}},
	}
	for _, c := range checks {
		fired := u.AlertFlags&c.flag != 0
		switch {
		case c.on && !fired:
			u.AlertFlags |= c.flag
			if err := a.emit(c.typ, c.data()); err != nil {
				return err
			}
		case !c.on && fired:
			u.AlertFlags &^= c.flag
		}
	}
	return nil
}

// ceilPercent is ⌈limit·pct/100⌉ for limit ≥ 0 and 0 < pct ≤ 100 (a
// result of ErrOverflow is impossible there; it saturates anyway).
func ceilPercent(limit, pct int64) int64 {
	v, err := money.MulDivCeil(limit, pct, 100)
	if err != nil {
		return math.MaxInt64
	}
	return v
}

// UsageTokens is what a usage counts against the token quota: every input
// and output token (prompt includes cached; completion includes reasoning).
// Call it on a usage Rules.CheckTokens accepted: the sum then fits.
func UsageTokens(u events.Usage) int64 { return u.PromptTokens + u.CompletionTokens }

// Pricer prices tokens of a model for a user group; *pricing.Table is one.
// It returns pricing.ErrNoPrice for a model without a price and
// money.ErrOverflow for a cost that does not fit.
type Pricer interface {
	Cost(model, group string, t pricing.Tokens) (int64, error)
}

// CheckUsage validates a billing.usage payload.
func CheckUsage(u events.Usage) error {
	if u.RequestID == "" || !events.ValidToken(u.UserID) || u.PromptTokens < 0 || u.CompletionTokens < 0 ||
		u.CachedTokens < 0 || u.CacheWriteTokens < 0 || u.ReasoningTokens < 0 {
		return ErrInvalidUsage
	}
	return nil
}

// PriceUsage returns what u costs a user of group. A refused request or
// one without tokens costs 0 whatever its model; otherwise a model without
// a price is ErrNoPrice, never free, and a cost beyond int64 is
// ErrCostOverCeiling, never wrapped.
func PriceUsage(p Pricer, u events.Usage, group string) (int64, error) {
	if u.Status == events.StatusRejected || UsageTokens(u) == 0 {
		return 0, nil
	}
	cost, err := p.Cost(u.Model, group, pricing.Tokens{Prompt: u.PromptTokens, Completion: u.CompletionTokens,
		Cached: u.CachedTokens, CacheWrite: u.CacheWriteTokens})
	switch {
	case errors.Is(err, pricing.ErrNoPrice):
		return 0, ErrNoPrice
	case errors.Is(err, money.ErrOverflow):
		return 0, fmt.Errorf("%w: the cost does not fit in an int64", ErrCostOverCeiling)
	}
	return cost, err
}

// EffectsOf collects the mirror writes and events of accounts.
func EffectsOf(accts ...*Account) Effects {
	var eff Effects
	for _, a := range accts {
		if a.Changed {
			eff.Mirrors = append(eff.Mirrors, MirrorOf(a.U))
		}
		eff.Events = append(eff.Events, a.Events...)
		if a.OutboxRow != "" && !slices.Contains(eff.OutboxRows, a.OutboxRow) {
			eff.OutboxRows = append(eff.OutboxRows, a.OutboxRow)
		}
	}
	return eff
}

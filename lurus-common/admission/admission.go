// Package admission is the contract of the admission state shared by the
// gateway (which reserves an estimated cost before relaying) and
// billing-service (which mirrors each user's balance and quota from
// PostgreSQL and releases reservations when it settles): the reservation
// outcomes and the plain types both sides pass. It imports only the
// standard library; the Redis store that enforces it, with its key schema
// and Lua scripts, is admission/redisstore.
//
// A reservation succeeds only when balance + credit − open reservations ≥
// estimate, the token quota has room for used + reserved + tokens, and a
// key's spend limit has room for its spend + its open reservations +
// estimate. Reservations expire (DefaultTTL) so a crashed gateway cannot
// lock a balance forever.
package admission

import "time"

// Code is the outcome of a reservation.
type Code int

// Reservation outcomes.
const (
	OK                  Code = 0
	Missing             Code = 1 // no mirror for this user: ask billing to load it, then retry
	Disabled            Code = 2
	InsufficientBalance Code = 3
	QuotaExceeded       Code = 4
	KeySpendLimit       Code = 5
)

func (c Code) String() string {
	switch c {
	case OK:
		return "ok"
	case Missing:
		return "missing"
	case Disabled:
		return "disabled"
	case InsufficientBalance:
		return "insufficient_balance"
	case QuotaExceeded:
		return "quota_exceeded"
	case KeySpendLimit:
		return "key_spend_limit"
	}
	return "unknown"
}

// DefaultTTL is how long a reservation holds funds when nobody releases it.
const DefaultTTL = 10 * time.Minute

// Reservation asks to hold an estimated cost.
type Reservation struct {
	ID     string // unique per request (the request id)
	UserID string
	KeyID  string
	// KeySpendLimitMicros is the key's spend limit (0: none).
	KeySpendLimitMicros int64
	Micros              int64 // estimated cost
	Tokens              int64 // estimated tokens (prompt + max output)
	TTL                 time.Duration
}

// Result is the outcome of Reserve.
type Result struct {
	Code Code
	// AvailableMicros is balance + credit − open reservations before this
	// one (for error messages).
	AvailableMicros int64
	// QuotaRemainingTokens is quota − used − reserved before this one
	// (-1 when there is no quota).
	QuotaRemainingTokens int64
	// HeldMicros is what the entry holds after a Lease call.
	HeldMicros int64
}

// PartRelease takes one settled request's estimate out of the entry that
// held it (its own reservation, or its gateway's lease).
type PartRelease struct {
	ReservationID string
	RequestID     string
	Micros        int64
	Tokens        int64
}

// Account is the PostgreSQL state billing mirrors into Redis.
type Account struct {
	UserID           string
	BalanceMicros    int64
	CreditMicros     int64
	QuotaLimitTokens int64 // 0: no quota
	QuotaUsedTokens  int64
	Active           bool
	// Version increases with every change in PostgreSQL; Apply ignores a
	// state older than the one mirrored, so concurrent or reordered writers
	// cannot roll the mirror back.
	Version int64
	// KeySpentMicros holds the spend of the keys this change touched (all
	// keys on a full rebuild).
	KeySpentMicros map[string]int64
}

// State is what the mirror holds for a user.
type State struct {
	Found            bool
	BalanceMicros    int64
	CreditMicros     int64
	ReservedMicros   int64
	ReservedTokens   int64
	QuotaLimitTokens int64
	QuotaUsedTokens  int64
	Active           bool
	Version          int64
}

// Update is one user's mirror write in ApplyBatch: the state to apply and
// every reservation settled with it.
type Update struct {
	Account    Account
	ReleaseIDs []string
	// Parts take settled requests' estimates out of leases (or of their
	// own reservations), once per request id.
	Parts []PartRelease
}

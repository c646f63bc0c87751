// Package ratelimit is the contract of the rate limits shared by every
// gateway replica: requests per minute (RPM), tokens per minute (TPM) and
// requests in flight (concurrency) per subject. It holds plain types and
// window arithmetic only; the Redis store that enforces them lives in
// ratelimit/redisstore, so importing these types never pulls in a driver.
//
// # Subjects
//
// A subject is what a limit applies to: an API key ("key:<id>"), a user
// ("user:<id>") or an upstream provider key ("upkey:<id>"). One request
// names all of its subjects in one Request, and they are checked and
// counted together: either every subject admits it and every counter moves,
// or none does.
//
// # Windows
//
// RPM and TPM use fixed one-minute windows: the window of an instant is its
// unix minute (seconds since the epoch / 60), and every replica counts into
// the same window state in Redis, so a window admits exactly the limit in
// total however many replicas share it. Replicas take the window from their
// own clock, so they must run NTP; skew only moves a request into the
// neighbouring window, it never lets one window exceed its limit. As with
// any fixed window, up to twice the limit can pass within one minute that
// straddles a boundary.
//
// # Tokens (TPM)
//
// Admission reserves the request's estimated tokens (prompt + output cap)
// in the admission window: a request is refused when the tokens already
// counted in the window plus its estimate exceed the limit, so the estimate
// counts. Every token of a request is then counted once. As a stream runs,
// the caller reports the running total of tokens delivered so far
// (the store's Charge); whatever goes beyond all the request has counted (its
// estimate included) counts in the current window, the window in which it
// was delivered, not the admission window, which may have passed. A stream
// is never cut for exceeding the TPM: its excess fills the current window
// and the next request waits for the window to end. At the end the caller
// reports the final usage (the store's Finish): usage beyond what was counted
// counts in the current window; usage below it is given back to the window
// the request last counted in, if that window is still current, and at most
// what the request counted there. A window that has passed is never
// changed.
//
// A request whose estimate alone exceeds a TPM limit can never be admitted;
// Decision.TooLarge says so, and waiting does not help.
//
// # Concurrency
//
// Each admitted request holds one slot per subject with a concurrency
// limit, as a lease that expires (default 10 minutes) so that a crashed
// gateway's slots come back on their own. The store's Charge renews the
// lease (with an unchanged total it only renews), so a stream longer than
// the lease must charge at least once per lease. A slot that expired before it was renewed is not taken again: the
// stream goes on, uncounted, rather than letting the subject exceed its
// limit. The store's Finish frees the slots; it is idempotent.
//
// # The caller's contract
//
//   - Call Admit only when some subject has a limit > 0. Keys and users
//     without limits are the pass-through path and must cost no Redis call
//     (the store also returns at once when no subject has a limit).
//   - Call Finish once an admitted request ends, whether it succeeded or
//     failed, with the final tokens (input + output; 0 when nothing ran). A lost Finish costs
//     nothing permanent: slots expire and windows pass.
//   - Errors wrapping ErrUnavailable mean Redis did not answer: apply the
//     admission setting (fail closed with 503, or admit up to the configured
//     allowance without limits). Errors from Charge or Finish are logged and
//     ignored: the request has been admitted already.
package ratelimit

import (
	"errors"
	"fmt"
	"time"
)

// ErrUnavailable is wrapped by every store error caused by Redis not
// answering (connection refused, timeout, server loading or read-only), as
// opposed to a refusal (which is not an error) or a bug. The caller applies
// the admission setting when it sees it: fail closed, or admit within the
// configured allowance.
var ErrUnavailable = errors.New("ratelimit: state store unavailable")

// Kind is one of the three limits.
type Kind uint8

// The limits. Their order is the order in which a subject is checked.
const (
	RPM         Kind = 1 // requests per window
	TPM         Kind = 2 // tokens per window
	Concurrency Kind = 3 // requests in flight
)

// String is the lower-case name, used as a metric label.
func (k Kind) String() string {
	switch k {
	case RPM:
		return "rpm"
	case TPM:
		return "tpm"
	case Concurrency:
		return "concurrency"
	}
	return "none"
}

// Limits are the limits of one subject; 0 means unlimited. The JSON names
// are the ones admins set on users, keys and upstream keys, so a limit
// reads the same in every API that carries it.
type Limits struct {
	RPM         int64 `json:"rpm_limit"`
	TPM         int64 `json:"tpm_limit"`
	Concurrency int64 `json:"concurrency_limit"`
}

// MaxLimit bounds every limit an admin may set. Anything larger is a typo
// or an attempt to overflow a counter, not a tier: no upstream serves a
// billion requests or tokens per minute to one key.
const MaxLimit = 1_000_000_000

// CheckLimit checks one limit as an admin sets it: 0 (unlimited) to
// MaxLimit. The error names field, so an edge can show it as is.
func CheckLimit(field string, v int64) error {
	if v < 0 || v > MaxLimit {
		return fmt.Errorf("%s must be 0 (unlimited) to %d, not %d", field, MaxLimit, v)
	}
	return nil
}

// Any reports whether any limit is set.
func (l Limits) Any() bool { return l.RPM > 0 || l.TPM > 0 || l.Concurrency > 0 }

// Within is l capped by c, kind by kind, where 0 means unlimited on either
// side: the smaller of two set limits, else whichever is set. It is how a
// key's limit is held under its user's.
func (l Limits) Within(c Limits) Limits {
	return Limits{RPM: tighter(l.RPM, c.RPM), TPM: tighter(l.TPM, c.TPM), Concurrency: tighter(l.Concurrency, c.Concurrency)}
}

func tighter(a, b int64) int64 {
	switch {
	case a <= 0:
		return max(b, 0)
	case b <= 0:
		return a
	}
	return min(a, b)
}

// Subject is one party a request counts against, with its limits.
type Subject struct {
	// ID names the subject, e.g. KeySubject(id). It must be unique within a
	// request and must not contain '{' or '}'.
	ID     string
	Limits Limits
}

// KeySubject names an API key's subject.
func KeySubject(keyID string) string { return "key:" + keyID }

// UserSubject names a user's subject.
func UserSubject(userID string) string { return "user:" + userID }

// UpstreamKeySubject names an upstream provider key's subject.
func UpstreamKeySubject(providerKeyID string) string { return "upkey:" + providerKeyID }

// Request asks to admit one request against all of its subjects at once.
type Request struct {
	// ID is the request id: the concurrency slot's member and the handle of
	// the request's token accounting. Admitting the same id again while it
	// is open counts nothing twice.
	ID       string
	Subjects []Subject
	// Tokens is the estimate reserved against every TPM limit (prompt
	// tokens + output cap).
	Tokens int64
}

// Limited reports whether some subject of r has a limit, that is whether
// Admit must be called at all.
func (r Request) Limited() bool {
	for _, s := range r.Subjects {
		if s.Limits.Any() {
			return true
		}
	}
	return false
}

// Validate checks the request's shape (not its limits).
func (r Request) Validate() error {
	if r.ID == "" {
		return errors.New("ratelimit: request id is required")
	}
	if r.Tokens < 0 {
		return fmt.Errorf("ratelimit: negative token estimate %d", r.Tokens)
	}
	seen := make(map[string]bool, len(r.Subjects))
	for _, s := range r.Subjects {
		if s.ID == "" || containsBrace(s.ID) {
			return fmt.Errorf("ratelimit: bad subject %q", s.ID)
		}
		if seen[s.ID] {
			return fmt.Errorf("ratelimit: subject %q named twice", s.ID)
		}
		seen[s.ID] = true
		if s.Limits.RPM < 0 || s.Limits.TPM < 0 || s.Limits.Concurrency < 0 {
			return fmt.Errorf("ratelimit: negative limit for %q", s.ID)
		}
	}
	return nil
}

func containsBrace(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '{' || s[i] == '}' {
			return true
		}
	}
	return false
}

// Headroom is what one limit leaves, for the x-ratelimit-* headers. The
// store reports the tightest limit in force: the one with the fewest
// remaining.
type Headroom struct {
	// Limit is the limit in force; 0 means no subject has this limit (send
	// no header).
	Limit int64
	// Remaining is Limit minus what the window has counted, after this
	// request when it was admitted; it is never below 0.
	Remaining int64
	// Reset is the time until the window ends (0 for concurrency).
	Reset time.Duration
}

// Decision is the answer to Admit.
type Decision struct {
	Allowed bool

	// When refused: the subject and limit that refused, and how long to
	// wait (Retry-After). A window limit refuses until the window ends; a
	// concurrency limit has no known end, so RetryAfter is one second.
	// When several subjects refuse, a window limit is reported before a
	// concurrency limit (it is the longer wait).
	Subject    string
	Kind       Kind
	Limit      int64
	RetryAfter time.Duration
	// TooLarge is set when the estimate alone exceeds the TPM limit: the
	// request can never be admitted.
	TooLarge bool

	// Requests and Tokens are the tightest RPM and TPM in force; they are
	// set whether the request was admitted or not. Concurrency is the
	// tightest concurrency limit (in flight, including this request).
	Requests    Headroom
	Tokens      Headroom
	Concurrency Headroom

	// Ticket is what Charge and Finish need; zero when refused.
	Ticket Ticket
}

// Ticket identifies an admitted request's state. It is a plain value the
// caller keeps for the life of the request; all state is in the store.
type Ticket struct {
	RequestID string
	// Window is the unix minute the request was admitted in.
	Window int64
	// TPM and Concurrency are the subjects whose TPM and concurrency limits
	// the request counts against.
	TPM         []string
	Concurrency []string
}

// Open reports whether the ticket holds state the store must be told about
// (Charge and Finish make no call otherwise).
func (t Ticket) Open() bool { return len(t.TPM) > 0 || len(t.Concurrency) > 0 }

// Usage is what a subject has used, as a store reports it for display:
// its counters in the current window and its requests in flight.
type Usage struct {
	// Window is the unix minute the counters belong to; it ends at
	// WindowEnd(Window).
	Window   int64
	Requests int64
	Tokens   int64
	InFlight int64
}

// WindowOf is the window (unix minute) of an instant.
func WindowOf(t time.Time) int64 { return floorDiv(t.Unix(), 60) }

// WindowEnd is when window w ends.
func WindowEnd(w int64) time.Time { return time.Unix((w+1)*60, 0) }

// UntilReset is the time from now to the end of now's window (> 0).
func UntilReset(now time.Time) time.Duration { return WindowEnd(WindowOf(now)).Sub(now) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

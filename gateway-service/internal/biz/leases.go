package biz

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// Admission is what admission held for one request: its estimate, inside
// the entry ReservationID (the key's lease, or the request's own
// reservation). Billing takes exactly Micros and Tokens back out of that
// entry when it settles the request.
type Admission struct {
	ReservationID string
	Micros        int64
	Tokens        int64
}

// LeaseConfig tunes Leases.
type LeaseConfig struct {
	// Factor sizes a lease extension: Factor × the request's estimate
	// (default 20), or, for a busy key, as many estimates as the key
	// admitted in Window at its recent rate, whichever is more. 1 or less
	// turns leasing off: every request holds its own reservation in Redis.
	Factor int64
	// Prefetch extends a lease in the background once three quarters of
	// its last extension are given out, so a steady key's requests do not
	// wait for the Redis round trip of an extension; a request that still
	// finds the lease short while a refill is under way waits for it.
	Prefetch bool
	// Window is how much of a busy key's traffic one extension covers
	// (default 250 ms): the number of extensions — Redis round trips,
	// during which the key's requests wait — stays near 1/Window per
	// second whatever the rate. MaxShare still caps every extension.
	Window time.Duration
	// MaxShare caps an extension at 1/MaxShare of what the user had
	// available at the previous one (default 8), so one gateway never
	// locks much of a small balance; a request that does not fit a larger
	// extension is retried with exactly its estimate.
	MaxShare int64
	// TTL is the life of a lease entry in Redis without renewal (default
	// 10 min); leases in use are renewed every TTL/3.
	TTL time.Duration
	// Idle returns a lease's unused remainder after this long without a
	// request (default 30 s).
	Idle time.Duration
	// Check is how often a lease in use is renewed and compared with what
	// Redis holds (default 5 s, at most TTL/3): if the entry vanished (a
	// flushed Redis), the remainder is dropped, so at most one extension
	// can be admitted without a hold, for at most this long.
	Check time.Duration
	// Instance names this gateway process in its lease ids.
	Instance string
	// FailOpenMaxMicros admits an estimate up to this many micro-USD
	// without a hold while Redis is down (0: fail closed).
	FailOpenMaxMicros int64
	// Observe, when set, is told how each admission went: "local" (from
	// the lease, no round trip), "extended" (the lease was extended),
	// "reserved" (leasing off: a reservation of its own); and "refill" for
	// each background extension.
	Observe func(mode string)
	Now     func() time.Time
}

// Leases admits requests against per-key leases: a gateway holds, for each
// API key in use, one admission entry in Redis and admits requests against
// what it holds without a round trip; when the lease runs short it is
// extended (one Lua call, with the same checks as a reservation: balance +
// credit − holds, quota, key spend limit). Every admitted request's
// estimate stays held in the lease until billing settles that request and
// takes the estimate back out, atomically with the debit, so the money
// rules are those of per-request reservations; what the gateway holds
// beyond its requests is at most one extension per key, returned when the
// key goes idle, on shutdown, or by expiry if the gateway dies.
type Leases struct {
	cfg    LeaseConfig
	admit  Admitter
	loader AccountLoader

	mu      sync.Mutex
	byKey   map[string]*lease
	seq     atomic.Uint64
	refills sync.WaitGroup
}

type lease struct {
	mu             sync.Mutex
	id             string
	userID, keyID  string
	micros, tokens int64 // held in Redis and not yet given to a request
	avail          int64 // the user's availability at the last extension (-1: unknown)
	quota          int64 // quota remaining then (-1: none)
	used, renewed  time.Time
	gone           bool // returned; a new lease replaces it
	// extendedAt is the last extension, admitted the requests admitted
	// since: the key's recent rate, which sizes the next extension.
	extendedAt time.Time
	admitted   int64
	// lastM, lastT size the last extension: a refill starts below a
	// quarter of it. refilled is closed when the refill under way (if
	// any) is done.
	lastM, lastT int64
	refilled     chan struct{}
}

// NewLeases returns the admission manager.
func NewLeases(cfg LeaseConfig, a Admitter, l AccountLoader) *Leases {
	if cfg.Factor == 0 {
		cfg.Factor = 20
	}
	if cfg.MaxShare <= 0 {
		cfg.MaxShare = 8
	}
	if cfg.Window <= 0 {
		cfg.Window = 250 * time.Millisecond
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 10 * time.Minute
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 30 * time.Second
	}
	if cfg.Check <= 0 {
		cfg.Check = 5 * time.Second
	}
	cfg.Check = min(cfg.Check, cfg.TTL/3)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Observe == nil {
		cfg.Observe = func(string) {}
	}
	return &Leases{cfg: cfg, admit: a, loader: l, byKey: map[string]*lease{}}
}

// Admit holds h's estimate for request h.ID of key h.KeyID.
func (l *Leases) Admit(ctx context.Context, h Hold) (Admission, error) {
	if l.cfg.Factor <= 1 {
		if _, err := l.extend(ctx, Hold{ID: h.ID, UserID: h.UserID, KeyID: h.KeyID, KeyLimitMicros: h.KeyLimitMicros,
			Micros: h.Micros, Tokens: h.Tokens}); err != nil {
			return l.failOpen(h, err)
		}
		l.cfg.Observe("reserved")
		return Admission{ReservationID: h.ID, Micros: h.Micros, Tokens: h.Tokens}, nil
	}
	for {
		ls := l.leaseFor(h)
		ls.mu.Lock()
		if ls.gone { // returned meanwhile: take the new one
			ls.mu.Unlock()
			continue
		}
		if ls.short(h) && ls.refilled != nil { // a refill is under way: wait for it, then look again
			done := ls.refilled
			ls.mu.Unlock()
			select {
			case <-done:
				continue
			case <-ctx.Done():
				return Admission{}, apperr.Wrap(ctx.Err(), apperr.ReasonAdmissionDown, "admission is unavailable; retry later")
			}
		}
		adm, err := l.take(ctx, ls, h)
		ls.mu.Unlock()
		if err != nil {
			return l.failOpen(h, err)
		}
		return adm, nil
	}
}

// short reports whether the lease holds less than h needs. ls.mu is held.
func (ls *lease) short(h Hold) bool { return ls.micros < h.Micros || ls.tokens < h.Tokens }

func (l *Leases) failOpen(h Hold, err error) (Admission, error) {
	if apperr.ReasonOf(err) == apperr.ReasonAdmissionDown && l.cfg.FailOpenMaxMicros > 0 && h.Micros <= l.cfg.FailOpenMaxMicros {
		return Admission{}, nil // admitted without a hold; billing debits what is used
	}
	return Admission{}, err
}

func (l *Leases) leaseFor(h Hold) *lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	ls := l.byKey[h.KeyID]
	if ls == nil {
		ls = &lease{id: "lease:" + l.cfg.Instance + ":" + h.KeyID, userID: h.UserID, keyID: h.KeyID, avail: -1, quota: -1}
		l.byKey[h.KeyID] = ls
	}
	return ls
}

// take gives h its estimate from the lease, extending it when short, and
// starts a background refill when it runs low. ls.mu is held.
func (l *Leases) take(ctx context.Context, ls *lease, h Hold) (Admission, error) {
	now := l.cfg.Now()
	mode := "local"
	if ls.short(h) {
		mode = "extended"
		needM, needT := max(0, h.Micros-ls.micros), max(0, h.Tokens-ls.tokens)
		ext := l.extension(ls, h, needM, needT, now)
		res, err := l.extend(ctx, ext)
		full := true
		if err != nil && apperr.KindOf(err) != apperr.KindUnavailable && (ext.Micros > needM || ext.Tokens > needT) {
			// a larger extension does not fit: try exactly what is needed
			ext.Micros, ext.Tokens = needM, needT
			res, err = l.extend(ctx, ext)
			full = false
		}
		if err != nil {
			return Admission{}, err
		}
		l.apply(ls, ext, res, now)
		if !full { // the balance is nearly gone: no refills until a full extension fits again
			ls.lastM, ls.lastT = 0, 0
		}
	}
	ls.admitted++
	// Never below zero: when the entry held less than this gateway
	// counted (Redis lost it), apply capped the remainder at what is held
	// and this request takes more than that. A negative remainder would
	// make the next extension hold the difference again, where no
	// settlement or return would ever take it out.
	ls.micros = max(0, ls.micros-h.Micros)
	ls.tokens = max(0, ls.tokens-h.Tokens)
	ls.used = now
	l.cfg.Observe(mode)
	if l.cfg.Prefetch && ls.refilled == nil && ls.lastM > 0 && (ls.micros < ls.lastM/4 || ls.tokens < ls.lastT/4) {
		ls.refilled = make(chan struct{})
		l.refills.Add(1)
		go l.refill(ls, h)
	}
	return Admission{ReservationID: ls.id, Micros: h.Micros, Tokens: h.Tokens}, nil
}

// extension sizes the next extension of ls for requests like h: at least
// what h still needs, Factor or Window's worth of estimates, at most
// 1/MaxShare of what the user had available. ls.mu is held.
func (l *Leases) extension(ls *lease, h Hold, needM, needT int64, now time.Time) Hold {
	n := l.extensionSize(ls, now)
	chunkM, chunkT := max(needM, n*h.Micros), max(needT, n*h.Tokens)
	if ls.avail >= 0 {
		chunkM = max(needM, min(chunkM, ls.avail/l.cfg.MaxShare))
	}
	if ls.quota >= 0 {
		chunkT = max(needT, min(chunkT, ls.quota/l.cfg.MaxShare))
	}
	return Hold{ID: ls.id, UserID: h.UserID, KeyID: h.KeyID, KeyLimitMicros: h.KeyLimitMicros, Micros: chunkM, Tokens: chunkT}
}

// apply adds an extension Redis granted to the lease. ls.mu is held.
func (l *Leases) apply(ls *lease, ext Hold, res HoldResult, now time.Time) {
	// The remainder can never exceed what the entry holds (it may have
	// expired and been created anew by this extension).
	ls.micros = min(ls.micros+ext.Micros, res.HeldMicros)
	ls.tokens += ext.Tokens
	ls.avail, ls.quota = res.AvailableMicros-ext.Micros, res.QuotaRemainingTokens
	if ls.quota >= 0 {
		ls.quota -= ext.Tokens
	}
	ls.lastM, ls.lastT = ext.Micros, ext.Tokens
	ls.renewed, ls.extendedAt, ls.admitted = now, now, 0
}

var errNothingToRefill = errors.New("leases: nothing to refill")

// refill extends ls in the background, sized like an extension for
// requests like h. A failure is left to the next request, which extends
// by itself (and gets the refusal) if it must.
func (l *Leases) refill(ls *lease, h Hold) {
	defer l.refills.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ls.mu.Lock()
	ext := l.extension(ls, h, 0, 0, l.cfg.Now())
	ls.mu.Unlock()
	var (
		res HoldResult
		err = errNothingToRefill
	)
	if ext.Micros > 0 || ext.Tokens > 0 {
		res, err = l.extend(ctx, ext)
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	defer func() { close(ls.refilled); ls.refilled = nil }()
	if err != nil {
		ls.lastM, ls.lastT = 0, 0 // no more refills until a request extends by itself
		return
	}
	if ls.gone { // returned while the refill was under way: return this too
		l.release(ctx, ls, ext.Micros, ext.Tokens)
		return
	}
	l.apply(ls, ext, res, l.cfg.Now())
	l.cfg.Observe("refill")
}

// maxExtension caps the requests one extension is sized for (the
// MaxShare cap on the amount applies as well).
const maxExtension = 1 << 20

// extensionSize is how many estimates the next extension of ls holds:
// Factor, or what the key admitted since its last extension scaled to
// Window, whichever is more. ls.mu is held.
func (l *Leases) extensionSize(ls *lease, now time.Time) int64 {
	n := l.cfg.Factor
	if dt := now.Sub(ls.extendedAt); !ls.extendedAt.IsZero() && dt > 0 {
		busy := float64(ls.admitted) * float64(l.cfg.Window) / float64(dt)
		n = max(n, int64(min(busy, maxExtension)))
	}
	return n
}

// extend adds h's amounts to entry h.ID in Redis, loading a missing
// account mirror once.
func (l *Leases) extend(ctx context.Context, h Hold) (HoldResult, error) {
	h.TTL = l.cfg.TTL
	res, err := l.admit.Lease(ctx, h)
	if err == nil && res.Code == HoldMissing {
		if lerr := l.loader.LoadAccount(ctx, h.UserID); lerr != nil {
			return res, apperr.Wrap(lerr, apperr.ReasonDependencyDown, "cannot load the account's balance now")
		}
		res, err = l.admit.Lease(ctx, h)
	}
	if err != nil {
		return res, apperr.Wrap(err, apperr.ReasonAdmissionDown, "admission is unavailable; retry later")
	}
	switch res.Code {
	case HoldOK:
		return res, nil
	case HoldDisabled:
		return res, apperr.New(apperr.ReasonUserDisabled, "the key's user is disabled")
	case HoldInsufficientBalance:
		return res, apperr.New(apperr.ReasonInsufficientBalance, "insufficient balance for this request")
	case HoldQuotaExceeded:
		return res, apperr.New(apperr.ReasonQuotaExceeded, "token quota exceeded")
	case HoldKeySpendLimit:
		return res, apperr.New(apperr.ReasonKeySpendLimit, "the API key's spend limit is reached")
	default:
		return res, apperr.New(apperr.ReasonDependencyDown, "the account's balance is not available")
	}
}

// Maintain renews the leases in use and returns the idle ones; call it
// periodically (Run does).
func (l *Leases) Maintain(ctx context.Context) {
	now := l.cfg.Now()
	for _, ls := range l.all() {
		ls.mu.Lock()
		switch {
		case now.Sub(ls.used) >= l.cfg.Idle:
			l.giveBack(ctx, ls)
		case now.Sub(ls.renewed) >= l.cfg.Check:
			res, err := l.admit.Lease(ctx, Hold{ID: ls.id, UserID: ls.userID, KeyID: ls.keyID, TTL: l.cfg.TTL})
			if err == nil {
				if res.HeldMicros < ls.micros { // the entry lost what it held (gone, or Redis flushed)
					// The tokens are kept: the entry may still hold some,
					// and only the return when idle takes them out
					// (clamped to what it holds).
					ls.micros = res.HeldMicros
				}
				ls.renewed = now
			}
		}
		ls.mu.Unlock()
	}
}

// release gives micros and tokens of the lease back to the user, once.
func (l *Leases) release(ctx context.Context, ls *lease, micros, tokens int64) error {
	if micros <= 0 && tokens <= 0 {
		return nil
	}
	part := Part{ReservationID: ls.id, RequestID: "return:" + l.cfg.Instance + ":" + strconv.FormatUint(l.seq.Add(1), 10),
		Micros: micros, Tokens: tokens}
	return l.admit.ReleasePart(ctx, ls.userID, part)
}

// giveBack returns the lease's remainder and retires it. ls.mu is held.
func (l *Leases) giveBack(ctx context.Context, ls *lease) {
	if err := l.release(ctx, ls, ls.micros, ls.tokens); err != nil {
		return // keep it; the next round tries again (or it expires)
	}
	ls.micros, ls.tokens, ls.gone = 0, 0, true
	l.mu.Lock()
	if l.byKey[ls.keyID] == ls {
		delete(l.byKey, ls.keyID)
	}
	l.mu.Unlock()
}

// all returns the current leases.
func (l *Leases) all() []*lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*lease, 0, len(l.byKey))
	for _, ls := range l.byKey {
		out = append(out, ls)
	}
	return out
}

// Run calls Maintain every interval until ctx ends.
func (l *Leases) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.Maintain(ctx)
		}
	}
}

// ReturnAll gives back every lease's remainder (a clean shutdown, once no
// request is in flight, leaves nothing held beyond unsettled requests),
// after the refills under way are done.
func (l *Leases) ReturnAll(ctx context.Context) {
	done := make(chan struct{})
	go func() { l.refills.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	for _, ls := range l.all() {
		ls.mu.Lock()
		l.giveBack(ctx, ls)
		ls.mu.Unlock()
	}
}

// Forget returns the lease of keyID, or of every key of userID when keyID
// is empty (key.changed: the key was revoked or changed, or its user was),
// so the next request leases again under the new terms.
func (l *Leases) Forget(keyID, userID string) {
	l.mu.Lock()
	var drop []*lease
	for k, ls := range l.byKey {
		if k == keyID || keyID == "" && ls.userID == userID {
			drop = append(drop, ls)
		}
	}
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, ls := range drop {
		ls.mu.Lock()
		l.giveBack(ctx, ls)
		ls.mu.Unlock()
	}
}

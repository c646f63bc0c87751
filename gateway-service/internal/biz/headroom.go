package biz

import (
	"sync"
	"sync/atomic"
	"time"
)

// Headroom remembers, per user, how much balance and token quota the last
// reservation left, so that a request whose estimate is small against it
// can be sent upstream while its reservation is still on its way to Redis
// (the round trip overlaps the upstream call instead of preceding it).
// Every request is still reserved before a single byte of its answer
// reaches the client; a reservation that fails aborts the upstream call
// and refuses the request, exactly as if it had been checked first. The
// margin (Factor) makes that a rare event rather than a routine one.
type Headroom struct {
	// Factor: a request overlaps only when the known headroom is at least
	// Factor times its estimate (0 turns overlapping off).
	Factor int64
	// MaxAge: what a reservation taught is trusted this long.
	MaxAge time.Duration
	Now    func() time.Time

	users sync.Map // user id -> *headroomEntry
}

type headroomEntry struct {
	micros atomic.Int64 // available after the last reservation, minus overlapped estimates since
	tokens atomic.Int64 // quota remaining likewise (-1: no quota)
	at     atomic.Int64 // unix nanos of the last reservation answer
}

// Take reports whether a hold of micros and tokens may overlap the
// upstream call. When it may, the estimate is taken off the remembered
// headroom at once, so concurrent requests of one user share it.
func (h *Headroom) Take(userID string, micros, tokens int64) bool {
	if h == nil || h.Factor <= 0 {
		return false
	}
	v, ok := h.users.Load(userID)
	if !ok {
		return false
	}
	e := v.(*headroomEntry)
	if h.Now().UnixNano()-e.at.Load() > int64(h.MaxAge) {
		return false
	}
	if e.micros.Load() < h.Factor*max(micros, 1) {
		return false
	}
	if q := e.tokens.Load(); q >= 0 && q < h.Factor*max(tokens, 1) {
		return false
	}
	e.micros.Add(-micros)
	if e.tokens.Load() >= 0 {
		e.tokens.Add(-tokens)
	}
	return true
}

// Learn records what a reservation answered for a hold of micros and
// tokens.
func (h *Headroom) Learn(userID string, res HoldResult, micros, tokens int64) {
	if h == nil || h.Factor <= 0 {
		return
	}
	v, _ := h.users.LoadOrStore(userID, new(headroomEntry))
	e := v.(*headroomEntry)
	avail, quota := res.AvailableMicros, res.QuotaRemainingTokens
	if res.Code == HoldOK {
		avail -= micros
		if quota >= 0 {
			quota -= tokens
		}
	} else {
		avail, quota = 0, 0 // refused: check the next request first
	}
	e.micros.Store(avail)
	e.tokens.Store(quota)
	e.at.Store(h.Now().UnixNano())
}

// Forget drops what is known of a user (its key or account changed).
func (h *Headroom) Forget(userID string) {
	if h != nil {
		h.users.Delete(userID)
	}
}

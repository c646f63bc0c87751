package biz

import (
	"sync"
	"time"
)

// BreakerState is a circuit breaker's state; the numbers are the values of
// the lurus_gateway_breaker_state gauge.
type BreakerState int

// The states.
const (
	BreakerClosed   BreakerState = 0
	BreakerOpen     BreakerState = 1
	BreakerHalfOpen BreakerState = 2
)

// String names the state in logs.
func (s BreakerState) String() string {
	switch s {
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half_open"
	}
	return "closed"
}

// BreakerConfig tunes every breaker of a Breakers set.
type BreakerConfig struct {
	ConsecutiveFailures int
	FailureRate         float64 // 0: only consecutive failures open it
	MinRequests         int
	Window              time.Duration
	Cooldown            time.Duration
	// OnChange is told every state change (logs, metrics). It runs with
	// the breaker's lock held: it must not call back into it.
	OnChange func(provider, key string, from, to BreakerState)
	Now      func() time.Time
}

// Breaker guards one provider key: it opens after ConsecutiveFailures in
// a row, or when at least MinRequests were seen in the current Window and
// FailureRate of them failed; after Cooldown it lets one probe through
// (half-open), whose outcome closes or reopens it.
type Breaker struct {
	cfg      *BreakerConfig
	provider string
	key      string

	mu          sync.Mutex
	state       BreakerState
	consecutive int
	winStart    time.Time
	winTotal    int
	winFailed   int
	openedAt    time.Time
	probing     bool
}

// Allow reports whether a request may go to this key now. In half-open it
// admits exactly one probe until that probe reports back.
func (b *Breaker) Allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerClosed:
		return true
	case BreakerOpen:
		if b.cfg.Now().Sub(b.openedAt) < b.cfg.Cooldown {
			return false
		}
		b.setLocked(BreakerHalfOpen)
		b.probing = true
		return true
	default: // half-open
		if b.probing {
			return false
		}
		b.probing = true
		return true
	}
}

// Available is Allow without taking the probe: whether a request could go
// to this key now (for candidate listing).
func (b *Breaker) Available() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerClosed:
		return true
	case BreakerOpen:
		return b.cfg.Now().Sub(b.openedAt) >= b.cfg.Cooldown
	default:
		return !b.probing
	}
}

// Record reports the outcome of a request Allow admitted.
func (b *Breaker) Record(ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.cfg.Now()
	if b.state == BreakerHalfOpen {
		b.probing = false
		if ok {
			b.resetLocked(now)
			b.setLocked(BreakerClosed)
		} else {
			b.openedAt = now
			b.setLocked(BreakerOpen)
		}
		return
	}
	if b.state == BreakerOpen {
		return // a late answer of a request sent before it opened
	}
	if now.Sub(b.winStart) >= b.cfg.Window {
		b.winStart, b.winTotal, b.winFailed = now, 0, 0
	}
	b.winTotal++
	if ok {
		b.consecutive = 0
		return
	}
	b.consecutive++
	b.winFailed++
	byCount := b.cfg.ConsecutiveFailures > 0 && b.consecutive >= b.cfg.ConsecutiveFailures
	byRate := b.cfg.FailureRate > 0 && b.winTotal >= b.cfg.MinRequests &&
		float64(b.winFailed) >= b.cfg.FailureRate*float64(b.winTotal)
	if byCount || byRate {
		b.openedAt = now
		b.setLocked(BreakerOpen)
	}
}

// Cancel reports that a request Allow admitted was never sent (its
// upstream request could not be built): nothing is counted, and a
// half-open breaker's probe slot is given back for the next request.
func (b *Breaker) Cancel() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerHalfOpen {
		b.probing = false
	}
}

// State returns the current state.
func (b *Breaker) State() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

func (b *Breaker) resetLocked(now time.Time) {
	b.consecutive = 0
	b.winStart, b.winTotal, b.winFailed = now, 0, 0
}

func (b *Breaker) setLocked(s BreakerState) {
	if s == b.state {
		return
	}
	from := b.state
	b.state = s
	if s == BreakerOpen {
		b.resetLocked(b.cfg.Now())
	}
	if b.cfg.OnChange != nil {
		b.cfg.OnChange(b.provider, b.key, from, s)
	}
}

// Breakers holds one Breaker per provider key, created on first use.
type Breakers struct {
	cfg BreakerConfig
	mu  sync.RWMutex
	m   map[string]*Breaker
}

// NewBreakers returns an empty set.
func NewBreakers(cfg BreakerConfig) *Breakers {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Breakers{cfg: cfg, m: map[string]*Breaker{}}
}

// Get returns the breaker of (provider, key).
func (s *Breakers) Get(provider, key string) *Breaker {
	id := provider + "/" + key
	s.mu.RLock()
	b := s.m[id]
	s.mu.RUnlock()
	if b != nil {
		return b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b = s.m[id]; b == nil {
		b = &Breaker{cfg: &s.cfg, provider: provider, key: key, winStart: s.cfg.Now()}
		s.m[id] = b
	}
	return b
}

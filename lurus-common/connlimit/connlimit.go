// Package connlimit caps long-lived connections (WebSocket sessions, SSE
// streams) per holder — a user, a client address — within one process.
// Each open connection holds a slot from the moment it is admitted until
// it ends; a holder at its cap is refused the next one. Memory is bounded
// by the connections open: a holder with none has no entry.
//
// Like package authguard it counts per process: behind N replicas a
// holder may open up to N × the cap. The caps are abuse limits (one
// runaway client must not hold a replica's sockets), not quotas.
package connlimit

import "sync"

// Limiter admits at most Max connections per key. The zero Max means no
// limit. A nil *Limiter admits everything.
type Limiter struct {
	max  int
	mu   sync.Mutex
	open map[string]int
}

// New returns a limiter of max connections per key (0: unlimited).
func New(max int) *Limiter {
	return &Limiter{max: max, open: map[string]int{}}
}

// Acquire takes a slot for key and returns the function that gives it
// back (safe to call more than once), or ok false when key already holds
// Max.
func (l *Limiter) Acquire(key string) (release func(), ok bool) {
	if l == nil || l.max <= 0 {
		return func() {}, true
	}
	l.mu.Lock()
	if l.open[key] >= l.max {
		l.mu.Unlock()
		return nil, false
	}
	l.open[key]++
	l.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { l.release(key) }) }, true
}

func (l *Limiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key] <= 1 {
		delete(l.open, key)
		return
	}
	l.open[key]--
}

// Open returns how many slots key holds.
func (l *Limiter) Open(key string) int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[key]
}

// Max returns the cap per key (0: unlimited).
func (l *Limiter) Max() int {
	if l == nil {
		return 0
	}
	return l.max
}

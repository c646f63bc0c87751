package biz

import "time"

// Limiter is a token bucket for one connection's incoming messages. It is
// not safe for concurrent use: only the connection's reader calls it.
type Limiter struct {
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

// NewLimiter returns a full bucket.
func NewLimiter(rate float64, burst int) Limiter {
	return Limiter{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// Allow takes one token at now, reporting false when none is left.
func (l *Limiter) Allow(now time.Time) bool {
	if !l.last.IsZero() {
		l.tokens += now.Sub(l.last).Seconds() * l.rate
		if l.tokens > l.burst {
			l.tokens = l.burst
		}
	}
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

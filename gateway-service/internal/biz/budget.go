package biz

import "sync"

// RetryBudget caps retries so that under persistent failure upstream
// attempts stay at most (1 + Ratio) × requests: every request earns Ratio
// of a retry, saved up to Burst; a retry spends a whole one.
type RetryBudget struct {
	mu     sync.Mutex
	ratio  float64
	burst  float64
	tokens float64
}

// NewRetryBudget returns a budget that starts full.
func NewRetryBudget(ratio, burst float64) *RetryBudget {
	return &RetryBudget{ratio: ratio, burst: burst, tokens: burst}
}

// Earn credits one request.
func (b *RetryBudget) Earn() {
	b.mu.Lock()
	b.tokens = min(b.tokens+b.ratio, b.burst)
	b.mu.Unlock()
}

// Spend takes one retry if the budget has it.
func (b *RetryBudget) Spend() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

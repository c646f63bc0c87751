package service

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// pingSlots is how many groups the connections' pings are spread over.
const pingSlots = 64

// pingWheel wakes every connection's writer once per ping interval with a
// single timer for the whole process: connections are spread over slots,
// and one slot's channel is closed (and replaced) every interval/slots, so
// pings go out in small waves instead of all at once, and an idle
// connection holds no timer of its own.
type pingWheel struct {
	mu    sync.Mutex
	slots [pingSlots]chan struct{}
	next  atomic.Uint32
}

func newPingWheel() *pingWheel {
	p := &pingWheel{}
	for i := range p.slots {
		p.slots[i] = make(chan struct{})
	}
	return p
}

// assign picks the slot of a new connection.
func (p *pingWheel) assign() uint8 { return uint8(p.next.Add(1) % pingSlots) }

// wait returns the channel closed at slot's next turn.
func (p *pingWheel) wait(slot uint8) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.slots[slot]
}

// run turns the wheel once per interval until ctx ends.
func (p *pingWheel) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(max(interval/pingSlots, time.Millisecond))
	defer t.Stop()
	for i := 0; ; i = (i + 1) % pingSlots {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		close(p.slots[i])
		p.slots[i] = make(chan struct{})
		p.mu.Unlock()
	}
}

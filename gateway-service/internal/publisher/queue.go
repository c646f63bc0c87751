package publisher

import (
	"sync"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
)

// queued is an outcome with its emission order.
type queued struct {
	o   *biz.Outcome
	seq uint64
}

// roundMax is the most outcomes one publishing round takes.
const roundMax = 256

// queue holds outcomes for the publisher's next round. Emit appends under
// a mutex and wakes the publisher only when a round starts (the queue was
// empty) or fills up, not for every outcome: a wake-up of the publishing
// goroutine is a thread waking on another core, which a request paid for
// on its way out when each outcome was handed over on a channel.
type queue struct {
	mu     sync.Mutex
	items  []queued
	max    int // capacity: what does not fit spills to the outbox
	seq    uint64
	closed bool
	wake   chan struct{}
}

func newQueue(max int) *queue {
	return &queue{max: max, wake: make(chan struct{}, 1)}
}

// push queues o. It returns the outcome with its sequence number and
// whether it was queued (false: the queue is full or closed, and the
// caller must keep it some other way).
func (q *queue) push(o *biz.Outcome) (queued, bool) {
	q.mu.Lock()
	q.seq++
	e := queued{o, q.seq}
	if q.closed || len(q.items) >= q.max {
		q.mu.Unlock()
		return e, false
	}
	q.items = append(q.items, e)
	n := len(q.items)
	q.mu.Unlock()
	if n == 1 || n == roundMax {
		q.signal()
	}
	return e, true
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take moves up to n queued outcomes (all when n ≤ 0), oldest first, to
// dst.
func (q *queue) take(dst []queued, n int) []queued {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n <= 0 || n > len(q.items) {
		n = len(q.items)
	}
	dst = append(dst, q.items[:n]...)
	rest := copy(q.items, q.items[n:])
	clear(q.items[rest:])
	q.items = q.items[:rest]
	return dst
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// close refuses further outcomes and returns what is queued.
func (q *queue) close() []queued {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	return q.take(nil, 0)
}

package service

import (
	"context"
	"sync"
)

// drain counts the requests in flight and, once shutdown starts waiting,
// turns new ones away. A sync.WaitGroup cannot do this: an Add at zero
// while Wait runs is a race, and a request accepted just after Wait
// returned would run while the process tears down what it needs. With
// drain, shutdown needs no pause for the listener to close first.
type drain struct {
	mu     sync.Mutex
	n      int
	closed bool
	idle   chan struct{} // closed once closed is set and n is 0
}

// enter counts a request in; false means shutdown has begun and the
// request must be refused.
func (d *drain) enter() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	d.n++
	return true
}

// leave counts a request out.
func (d *drain) leave() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n--
	if d.closed && d.n == 0 {
		close(d.idle)
	}
}

// wait refuses new requests from now on and blocks until those in flight
// have left, or ctx ends.
func (d *drain) wait(ctx context.Context) error {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		d.idle = make(chan struct{})
		if d.n == 0 {
			close(d.idle)
		}
	}
	idle := d.idle
	d.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

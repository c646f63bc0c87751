package coalesce

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a batch function that doubles its inputs, fails odd ones
// with their own error, records every batch's size, and can be held.
type recorder struct {
	mu      sync.Mutex
	sizes   []int
	hold    chan struct{} // when set, every batch waits for it to close
	entered chan struct{} // when set, receives once per batch as it starts
}

func (r *recorder) run(ctx context.Context, in []int) ([]int, []error) {
	if r.entered != nil {
		r.entered <- struct{}{}
	}
	if r.hold != nil {
		<-r.hold
	}
	r.mu.Lock()
	r.sizes = append(r.sizes, len(in))
	r.mu.Unlock()
	out, errs := make([]int, len(in)), make([]error, len(in))
	for i, v := range in {
		if v%2 == 1 {
			errs[i] = fmt.Errorf("odd %d", v)
			continue
		}
		out[i] = 2 * v
	}
	return out, errs
}

func (r *recorder) batches() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.sizes...)
}

// TestLoneCallGoesAtOnce: with nothing else queued, a call is its own
// batch and does not wait for company.
func TestLoneCallGoesAtOnce(t *testing.T) {
	r := &recorder{}
	c := New(r.run, Options{Senders: 1, MaxBatch: 64})
	defer c.Close()
	for i := 0; i < 3; i++ {
		start := time.Now()
		out, err := c.Do(context.Background(), 2*i)
		if err != nil || out != 4*i {
			t.Fatalf("Do(%d) = %d, %v", 2*i, out, err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("a lone call took %v", d)
		}
	}
	if got := fmt.Sprint(r.batches()); got != "[1 1 1]" {
		t.Fatalf("batches %s, want three of one", got)
	}
}

// TestCallsGatherWhileABatchIsInFlight: calls made while the only sender
// is busy go out together, at most MaxBatch at a time, and each gets its
// own answer (an error for one does not fail the others).
func TestCallsGatherWhileABatchIsInFlight(t *testing.T) {
	const n, maxBatch = 40, 16
	r := &recorder{hold: make(chan struct{}), entered: make(chan struct{}, n)}
	c := New(r.run, Options{Senders: 1, MaxBatch: maxBatch})
	defer c.Close()
	var wg sync.WaitGroup
	call := func(v int) {
		defer wg.Done()
		out, err := c.Do(context.Background(), v)
		switch {
		case v%2 == 1 && (err == nil || err.Error() != fmt.Sprintf("odd %d", v)):
			t.Errorf("Do(%d): err %v, want its own", v, err)
		case v%2 == 0 && (err != nil || out != 2*v):
			t.Errorf("Do(%d) = %d, %v", v, out, err)
		}
	}
	wg.Add(1)
	go call(0)
	<-r.entered // the first batch is in flight and held
	for v := 1; v < n; v++ {
		wg.Add(1)
		go call(v)
	}
	// Let the others queue up behind the held batch.
	deadline := time.Now().Add(5 * time.Second)
	for len(c.in) < min(n-1, cap(c.in)) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // and those blocked on a full queue to get there
	close(r.hold)
	wg.Wait()
	sizes, total := r.batches(), 0
	for _, s := range sizes {
		if s > maxBatch {
			t.Fatalf("batch of %d > max %d", s, maxBatch)
		}
		total += s
	}
	// 1 + ⌈39/16⌉ = 4 trips when every caller had queued; allow stragglers.
	if total != n || len(sizes) > n/4 {
		t.Fatalf("batches %v: %d calls in %d trips, want %d calls in at most %d", sizes, total, len(sizes), n, n/4)
	}
}

// TestGo: calls made without waiting are answered through their callback,
// also when the queue is full (Go does not block then).
func TestGo(t *testing.T) {
	const n = 50
	r := &recorder{hold: make(chan struct{})}
	c := New(r.run, Options{Senders: 1, MaxBatch: 2}) // queue of 2
	var wg sync.WaitGroup
	var sum atomic.Int64
	start := time.Now()
	for v := 0; v < n; v++ {
		wg.Add(1)
		if err := c.Go(2*v, func(out int, err error) {
			defer wg.Done()
			if err != nil {
				t.Error(err)
			}
			sum.Add(int64(out))
		}); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Go blocked for %v with a held sender", d)
	}
	close(r.hold)
	wg.Wait()
	if want := int64(2 * n * (n - 1)); sum.Load() != want { // Σ 4v
		t.Fatalf("sum of answers %d, want %d", sum.Load(), want)
	}
	c.Close()
	if err := c.Go(2, func(int, error) { t.Error("called after Close") }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Go after Close: %v", err)
	}
}

// TestDoContextEndsBeforeHandOver: a caller whose context ends while the
// queue is full gets ctx.Err() and its call is never made.
func TestDoContextEndsBeforeHandOver(t *testing.T) {
	r := &recorder{hold: make(chan struct{}), entered: make(chan struct{}, 8)}
	c := New(r.run, Options{Senders: 1, MaxBatch: 1}) // queue of 1
	defer c.Close()
	go c.Do(context.Background(), 0) //nolint:errcheck // held in flight
	<-r.entered
	go c.Do(context.Background(), 2) //nolint:errcheck // fills the queue
	for len(c.in) < 1 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Do(ctx, 4); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do with a full queue: %v", err)
	}
	close(r.hold)
	// 0 and 2 are made; 4 never is.
	deadline := time.Now().Add(5 * time.Second)
	for len(r.batches()) < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if got := fmt.Sprint(r.batches()); got != "[1 1]" {
		t.Fatalf("batches %s, want [1 1]", got)
	}
}

// TestBatchTimeout: a batch runs on a context bounded by Options.Timeout,
// not on any caller's.
func TestBatchTimeout(t *testing.T) {
	var left atomic.Int64
	c := New(func(ctx context.Context, in []int) ([]bool, []error) {
		d, ok := ctx.Deadline()
		if ok {
			left.Store(int64(time.Until(d)))
		}
		return make([]bool, len(in)), make([]error, len(in))
	}, Options{Timeout: time.Minute})
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := c.Do(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if l := time.Duration(left.Load()); l <= 50*time.Second || l > time.Minute {
		t.Fatalf("batch deadline in %v, want about a minute", l)
	}
}

// TestCloseRace: calls racing with Close are either made and answered or
// refused with ErrClosed, never left waiting nor made unanswered.
func TestCloseRace(t *testing.T) {
	r := &recorder{}
	c := New(r.run, Options{Senders: 2, MaxBatch: 4})
	var wg sync.WaitGroup
	var answered, refused atomic.Int32
	for i := 0; i < 200; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			switch _, err := c.Do(context.Background(), 2*i); {
			case err == nil:
				answered.Add(1)
			case errors.Is(err, ErrClosed):
				refused.Add(1)
			default:
				t.Error(err)
			}
		}()
		go func() {
			if err := c.Go(2*i, func(int, error) { answered.Add(1); wg.Done() }); err != nil {
				refused.Add(1)
				wg.Done()
			}
		}()
	}
	c.Close()
	c.Close() // idempotent
	wg.Wait()
	made := 0
	for _, s := range r.batches() {
		made += s
	}
	if answered.Load()+refused.Load() != 400 || int(answered.Load()) != made {
		t.Fatalf("answered %d + refused %d of 400; %d made", answered.Load(), refused.Load(), made)
	}
}

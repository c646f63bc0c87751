package biz

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// fakeAdmitter keeps entries and an available balance in memory, with
// the semantics of the Lua scripts.
type fakeAdmitter struct {
	mu       sync.Mutex
	avail    int64
	held     map[string]int64
	released map[string]bool
	calls    int
	missing  bool // next call answers HoldMissing
	down     bool
	// gate, when set, holds every Lease call until it is closed.
	gate chan struct{}
}

func newFakeAdmitter(avail int64) *fakeAdmitter {
	return &fakeAdmitter{avail: avail, held: map[string]int64{}, released: map[string]bool{}}
}

func (f *fakeAdmitter) Lease(_ context.Context, h Hold) (HoldResult, error) {
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.down {
		return HoldResult{}, errors.New("redis down")
	}
	if f.missing {
		f.missing = false
		return HoldResult{Code: HoldMissing}, nil
	}
	res := HoldResult{AvailableMicros: f.avail, QuotaRemainingTokens: -1, HeldMicros: f.held[h.ID]}
	if h.Micros == 0 && h.Tokens == 0 { // renewal
		return res, nil
	}
	if h.Micros > f.avail {
		res.Code = HoldInsufficientBalance
		return res, nil
	}
	f.avail -= h.Micros
	f.held[h.ID] += h.Micros
	res.HeldMicros = f.held[h.ID]
	return res, nil
}

func (f *fakeAdmitter) ReleasePart(_ context.Context, _ string, p Part) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.released[p.RequestID] {
		return nil
	}
	f.released[p.RequestID] = true
	d := min(p.Micros, f.held[p.ReservationID])
	f.held[p.ReservationID] -= d
	f.avail += d
	return nil
}

type fakeLoader struct{ loads int }

func (l *fakeLoader) LoadAccount(context.Context, string) error { l.loads++; return nil }

func hold(id string, micros int64) Hold {
	return Hold{ID: id, UserID: "usr_1", KeyID: "key_1", Micros: micros, Tokens: 1}
}

func TestLeasesAdmitLocallyAndExtend(t *testing.T) {
	clk := newClock()
	a := newFakeAdmitter(1_000_000)
	l := NewLeases(LeaseConfig{Factor: 10, MaxShare: 8, Idle: 30 * time.Second, Instance: "gw1", Now: clk.now}, a, &fakeLoader{})
	ctx := context.Background()
	adm, err := l.Admit(ctx, hold("r1", 100))
	if err != nil || adm.ReservationID != "lease:gw1:key_1" || adm.Micros != 100 {
		t.Fatalf("first admission: %+v %v", adm, err)
	}
	if a.held["lease:gw1:key_1"] != 1000 || a.calls != 1 {
		t.Fatalf("first extension: held %d after %d calls, want 10 × 100 in 1", a.held["lease:gw1:key_1"], a.calls)
	}
	for i := 0; i < 9; i++ { // the other 900 are admitted without a call
		if _, err := l.Admit(ctx, hold("r", 100)); err != nil {
			t.Fatal(err)
		}
	}
	if a.calls != 1 {
		t.Fatalf("%d calls for 10 requests inside one extension", a.calls)
	}
	if _, err := l.Admit(ctx, hold("r11", 100)); err != nil || a.calls != 2 {
		t.Fatalf("extension when short: %v, %d calls", err, a.calls)
	}
}

func TestLeasesSizeExtensionsToTheBalance(t *testing.T) {
	a := newFakeAdmitter(1600)
	l := NewLeases(LeaseConfig{Factor: 100, MaxShare: 8, Instance: "gw1"}, a, &fakeLoader{})
	ctx := context.Background()
	// 100 × 100 does not fit 1600: the exact need is held instead.
	if _, err := l.Admit(ctx, hold("r1", 100)); err != nil {
		t.Fatal(err)
	}
	if got := a.held["lease:gw1:key_1"]; got != 100 {
		t.Fatalf("held %d, want exactly the estimate after a refused larger extension", got)
	}
	// Next time the availability seen (1600 − 100) caps the extension at
	// an eighth of it.
	if _, err := l.Admit(ctx, hold("r2", 100)); err != nil {
		t.Fatal(err)
	}
	if got := a.held["lease:gw1:key_1"]; got != 100+1500/8 {
		t.Fatalf("held %d, want 100 + 1500/8", got)
	}
	// Until the balance is gone: then the refusal reaches the request.
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = l.Admit(ctx, hold("r", 100))
	}
	if apperr.ReasonOf(err) != apperr.ReasonInsufficientBalance {
		t.Fatalf("err = %v", err)
	}
	if total := a.held["lease:gw1:key_1"]; total > 1600 {
		t.Fatalf("held %d of a 1600 balance", total)
	}
}

func TestLeasesReturnIdleAndOnForget(t *testing.T) {
	clk := newClock()
	a := newFakeAdmitter(1_000_000)
	l := NewLeases(LeaseConfig{Factor: 10, Idle: 30 * time.Second, Instance: "gw1", Now: clk.now}, a, &fakeLoader{})
	ctx := context.Background()
	if _, err := l.Admit(ctx, hold("r1", 100)); err != nil {
		t.Fatal(err)
	}
	clk.add(10 * time.Second)
	l.Maintain(ctx)
	if a.held["lease:gw1:key_1"] != 1000 {
		t.Fatal("a lease in use was returned")
	}
	clk.add(30 * time.Second)
	l.Maintain(ctx)
	// the 900 not given to a request went back; the request's 100 stays
	// held until billing settles it.
	if got := a.held["lease:gw1:key_1"]; got != 100 {
		t.Fatalf("after idle return the lease holds %d, want the request's 100", got)
	}
	if _, err := l.Admit(ctx, hold("r2", 100)); err != nil || a.held["lease:gw1:key_1"] != 1100 {
		t.Fatalf("new lease after return: %v, held %d", err, a.held["lease:gw1:key_1"])
	}
	l.Forget("", "usr_1") // the user changed: everything unused goes back
	if got := a.held["lease:gw1:key_1"]; got != 200 {
		t.Fatalf("after Forget the lease holds %d, want the two requests' 200", got)
	}
}

func TestLeasesNoticeAVanishedEntry(t *testing.T) {
	clk := newClock()
	a := newFakeAdmitter(1_000_000)
	l := NewLeases(LeaseConfig{Factor: 10, Check: 5 * time.Second, Instance: "gw1", Now: clk.now}, a, &fakeLoader{})
	ctx := context.Background()
	if _, err := l.Admit(ctx, hold("r1", 100)); err != nil {
		t.Fatal(err)
	}
	// Redis is flushed: the lease entry is gone.
	a.mu.Lock()
	delete(a.held, "lease:gw1:key_1")
	a.mu.Unlock()
	clk.add(5 * time.Second)
	l.Admit(ctx, hold("r2", 100)) // still from the (now unheld) remainder
	l.Maintain(ctx)               // the renewal finds the entry gone
	calls := a.calls
	if _, err := l.Admit(ctx, hold("r3", 100)); err != nil {
		t.Fatal(err)
	}
	if a.calls != calls+1 || a.held["lease:gw1:key_1"] != 1000 {
		t.Fatalf("after the vanished entry was noticed: %d calls (want %d), held %d", a.calls, calls+1, a.held["lease:gw1:key_1"])
	}
}

func TestLeasesOffAndFailures(t *testing.T) {
	ctx := context.Background()
	a := newFakeAdmitter(1000)
	loader := &fakeLoader{}
	off := NewLeases(LeaseConfig{Factor: 1, Instance: "gw1"}, a, loader)
	a.missing = true
	adm, err := off.Admit(ctx, hold("req-9", 100))
	if err != nil || adm.ReservationID != "req-9" || a.held["req-9"] != 100 || loader.loads != 1 {
		t.Fatalf("reservation per request: %+v %v held=%d loads=%d", adm, err, a.held["req-9"], loader.loads)
	}
	a.down = true
	if _, err := off.Admit(ctx, hold("req-10", 100)); apperr.ReasonOf(err) != apperr.ReasonAdmissionDown {
		t.Fatalf("redis down: %v", err)
	}
	open := NewLeases(LeaseConfig{Factor: 10, Instance: "gw1", FailOpenMaxMicros: 500}, a, loader)
	if adm, err := open.Admit(ctx, hold("req-11", 100)); err != nil || adm.ReservationID != "" {
		t.Fatalf("fail-open: %+v %v", adm, err)
	}
	if _, err := open.Admit(ctx, hold("req-12", 600)); apperr.ReasonOf(err) != apperr.ReasonAdmissionDown {
		t.Fatalf("fail-open above its cap: %v", err)
	}
}

func TestLeasesConcurrentNeverOverdraw(t *testing.T) {
	a := newFakeAdmitter(100_000)
	l := NewLeases(LeaseConfig{Factor: 20, Instance: "gw1"}, a, &fakeLoader{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := int64(0)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, err := l.Admit(context.Background(), hold("r", 300)); err != nil {
					return
				}
				mu.Lock()
				admitted += 300
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if admitted > 100_000 || admitted < 100_000-300 {
		t.Fatalf("admitted %d of a 100000 balance", admitted)
	}
}

func TestLeasesSizeExtensionsToTheRate(t *testing.T) {
	clk := newClock()
	a := newFakeAdmitter(1 << 40)
	l := NewLeases(LeaseConfig{Factor: 10, Window: 100 * time.Millisecond, Instance: "gw1", Now: clk.now}, a, &fakeLoader{})
	ctx := context.Background()
	// A quiet key: 10 requests a second; extensions stay at Factor.
	for i := 0; i < 30; i++ {
		if _, err := l.Admit(ctx, hold("q", 100)); err != nil {
			t.Fatal(err)
		}
		clk.add(100 * time.Millisecond)
	}
	if a.calls != 3 {
		t.Fatalf("quiet key: %d extensions for 30 requests, want 3 of 10", a.calls)
	}
	// A busy key: 10 000 requests a second. The first extension after the
	// burst starts is sized from the quiet rate; from then on each covers
	// about 100 ms, i.e. 1000 requests.
	calls := a.calls
	for i := 0; i < 20_000; i++ {
		if _, err := l.Admit(ctx, hold("b", 100)); err != nil {
			t.Fatal(err)
		}
		clk.add(100 * time.Microsecond)
	}
	if n := a.calls - calls; n > 25 || n < 15 {
		t.Fatalf("busy key: %d extensions for 20000 requests at 10k/s, want about 20 (one per 100 ms)", n)
	}
}

func TestLeasesRateSizingKeepsTheShareCap(t *testing.T) {
	clk := newClock()
	a := newFakeAdmitter(80_000)
	l := NewLeases(LeaseConfig{Factor: 2, MaxShare: 8, Window: time.Second, Instance: "gw1", Now: clk.now}, a, &fakeLoader{})
	ctx := context.Background()
	for i := 0; i < 50; i++ { // fast: a rate far above what the balance covers
		if _, err := l.Admit(ctx, hold("r", 10)); err != nil {
			t.Fatal(err)
		}
		clk.add(time.Microsecond)
		a.mu.Lock()
		held := a.held["lease:gw1:key_1"]
		a.mu.Unlock()
		if unused := held - int64(i+1)*10; unused > 80_000/8 {
			t.Fatalf("after %d requests the lease holds %d unused, above an eighth of the balance", i+1, unused)
		}
	}
}

// modes counts how admissions went (LeaseConfig.Observe).
type modes struct {
	mu sync.Mutex
	n  map[string]int
}

func (m *modes) observe(mode string) { m.mu.Lock(); m.n[mode]++; m.mu.Unlock() }

func (m *modes) get(mode string) int { m.mu.Lock(); defer m.mu.Unlock(); return m.n[mode] }

func (f *fakeAdmitter) heldBy(id string) int64 { f.mu.Lock(); defer f.mu.Unlock(); return f.held[id] }

func (f *fakeAdmitter) callCount() int { f.mu.Lock(); defer f.mu.Unlock(); return f.calls }

func prefetching(a *fakeAdmitter, m *modes) *Leases {
	return NewLeases(LeaseConfig{Factor: 10, Prefetch: true, Instance: "gw1", Observe: m.observe}, a, &fakeLoader{})
}

func TestLeasesRefillInTheBackground(t *testing.T) {
	a := newFakeAdmitter(1_000_000)
	m := &modes{n: map[string]int{}}
	clk := newClock()
	// A quiet key (10 requests a second): extensions stay at Factor.
	l := NewLeases(LeaseConfig{Factor: 10, Prefetch: true, Instance: "gw1", Observe: m.observe, Now: clk.now}, a, &fakeLoader{})
	ctx := context.Background()
	for i := 0; i < 40; i++ {
		if _, err := l.Admit(ctx, hold("r", 100)); err != nil {
			t.Fatal(err)
		}
		l.refills.Wait() // make the background refills deterministic
		clk.add(100 * time.Millisecond)
	}
	// One extension by a request (the first), the rest refilled in the
	// background before anyone was short.
	if m.get("extended") != 1 || m.get("local") != 39 || m.get("refill") < 3 {
		t.Fatalf("modes %v: requests must not wait for extensions once the lease refills itself", m.n)
	}
	if held := a.heldBy("lease:gw1:key_1"); held != 1000*int64(1+m.get("refill")) {
		t.Fatalf("held %d after %d refills", held, m.get("refill"))
	}
}

func TestLeasesShortRequestWaitsForTheRefill(t *testing.T) {
	a := newFakeAdmitter(1_000_000)
	m := &modes{n: map[string]int{}}
	l := prefetching(a, m)
	ctx := context.Background()
	for i := 0; i < 8; i++ { // 1000 held, 800 given: below a quarter left, a refill starts
		a.mu.Lock()
		if i == 7 {
			a.gate = make(chan struct{})
		}
		a.mu.Unlock()
		if _, err := l.Admit(ctx, hold("r", 100)); err != nil {
			t.Fatal(err)
		}
	}
	// 200 left: two more fit, the third is short and must wait for the
	// refill held at the gate instead of extending by itself.
	for i := 0; i < 2; i++ {
		if _, err := l.Admit(ctx, hold("r", 100)); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { _, err := l.Admit(ctx, hold("r-short", 100)); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("a short request went on while the refill was under way: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	a.mu.Lock()
	close(a.gate)
	a.gate = nil
	a.mu.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	l.refills.Wait()
	if m.get("extended") != 1 || a.callCount() < 2 {
		t.Fatalf("modes %v, %d calls: the short request should have been served by the refill", m.n, a.callCount())
	}
}

func TestLeasesRefillOfAReturnedLeaseGoesBack(t *testing.T) {
	a := newFakeAdmitter(1_000_000)
	l := prefetching(a, &modes{n: map[string]int{}})
	ctx := context.Background()
	for i := 0; i < 7; i++ {
		if _, err := l.Admit(ctx, hold("r", 100)); err != nil {
			t.Fatal(err)
		}
	}
	a.mu.Lock()
	a.gate = make(chan struct{})
	a.mu.Unlock()
	if _, err := l.Admit(ctx, hold("r8", 100)); err != nil { // starts the refill, held at the gate
		t.Fatal(err)
	}
	l.Forget("key_1", "") // the key changed: the remainder goes back at once
	a.mu.Lock()
	close(a.gate)
	a.gate = nil
	a.mu.Unlock()
	l.refills.Wait()
	// The eight requests' estimates stay held until billing settles them;
	// the remainder and the late refill both went back.
	if held := a.heldBy("lease:gw1:key_1"); held != 800 {
		t.Fatalf("held %d, want only the eight requests' 800", held)
	}
}

func TestLeasesRefillThatDoesNotFitStopsRefilling(t *testing.T) {
	a := newFakeAdmitter(1_500)
	m := &modes{n: map[string]int{}}
	l := NewLeases(LeaseConfig{Factor: 10, MaxShare: 1, Prefetch: true, Instance: "gw1", Observe: m.observe}, a, &fakeLoader{})
	ctx := context.Background()
	var err error
	admitted := 0
	for i := 0; i < 30 && err == nil; i++ {
		if _, err = l.Admit(ctx, hold("r", 100)); err == nil {
			admitted++
		}
		l.refills.Wait()
	}
	if apperr.ReasonOf(err) != apperr.ReasonInsufficientBalance || admitted != 15 {
		t.Fatalf("admitted %d of a 1500 balance at 100 each, then %v", admitted, err)
	}
	if calls := a.callCount(); calls > 10 {
		t.Fatalf("%d calls to Redis for 16 requests: failed refills must not repeat on every request", calls)
	}
}

// When the lease entry in Redis holds less than this gateway counted (a
// flushed Redis, then settlements of earlier requests taking their
// estimates out of the new entry) and the balance only allows a small
// extension, the lease's remainder must not go below zero: a negative
// remainder made the next extension hold that much more than any request
// or return would ever take out again, locking the user's money in Redis
// until the entry expired (found by the fault suite after a FLUSHDB).
func TestLeaseRemainderNeverNegativeAfterAShrunkenEntry(t *testing.T) {
	clk := newClock()
	a := newFakeAdmitter(800)
	l := NewLeases(LeaseConfig{Factor: 10, Instance: "gw1", Now: clk.now}, a, &fakeLoader{})
	ctx := context.Background()
	const id = "lease:gw1:key_1"
	if _, err := l.Admit(ctx, hold("r1", 50)); err != nil || a.heldBy(id) != 500 {
		t.Fatalf("first extension: %v, held %d", err, a.heldBy(id))
	}
	// The entry lost what it held; the gateway still counts 450.
	a.mu.Lock()
	a.held[id] = 0
	a.mu.Unlock()
	for i := 2; i <= 9; i++ {
		if _, err := l.Admit(ctx, hold("r"+strconv.Itoa(i), 50)); err != nil {
			t.Fatal(err)
		}
	}
	// 50 counted, 0 held; the balance allows only the 50 missing.
	if _, err := l.Admit(ctx, hold("r10", 100)); err != nil {
		t.Fatal(err)
	}
	_ = a.ReleasePart(ctx, "usr_1", Part{ReservationID: id, RequestID: "r10", Micros: 100, Tokens: 1})
	if _, err := l.Admit(ctx, hold("r11", 50)); err != nil {
		t.Fatal(err)
	}
	_ = a.ReleasePart(ctx, "usr_1", Part{ReservationID: id, RequestID: "r11", Micros: 50, Tokens: 1})
	clk.add(time.Minute)
	l.Maintain(ctx) // idle: the lease goes back
	if got := a.heldBy(id); got != 0 {
		t.Fatalf("after every request settled and the lease went back, the entry still holds %d µ", got)
	}
}

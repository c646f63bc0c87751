package biz

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// fakeVerifier answers from a table and counts calls.
type fakeVerifier struct {
	mu    sync.Mutex
	keys  map[string]Identity
	down  bool
	calls atomic.Int64
	gate  chan struct{} // when set, VerifyKey waits on it
}

func (f *fakeVerifier) VerifyKey(_ context.Context, key string) (Identity, error) {
	f.calls.Add(1)
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return Identity{}, apperr.New(apperr.ReasonDependencyDown, "billing down")
	}
	id, ok := f.keys[key]
	if !ok {
		return Identity{}, apperr.New(apperr.ReasonInvalidCredentials, "invalid API key")
	}
	return id, nil
}

func (f *fakeVerifier) set(key string, id Identity) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[key] = id
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newAuth(v KeyVerifier, c *fakeClock) *Authenticator {
	return NewAuthenticator(v, AuthConfig{PositiveTTL: time.Minute, NegativeTTL: 5 * time.Second, MaxEntries: 100, Now: c.now})
}

func TestAuthenticateChecks(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	past, future := clock.t.Add(-time.Second), clock.t.Add(time.Hour)
	v := &fakeVerifier{keys: map[string]Identity{}}
	keys := map[string]Identity{
		"ok":       {UserID: "usr_1", KeyID: "key_1", Active: true},
		"disabled": {UserID: "usr_2", KeyID: "key_2", Active: false},
		"expired":  {UserID: "usr_3", KeyID: "key_3", Active: true, ExpiresAt: &past},
		"later":    {UserID: "usr_4", KeyID: "key_4", Active: true, ExpiresAt: &future},
		"iplist":   {UserID: "usr_5", KeyID: "key_5", Active: true, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
	}
	real := map[string]string{}
	for name, id := range keys {
		k := apikey.Generate()
		real[name] = k
		v.set(k, id)
	}
	a := newAuth(v, clock)
	tests := []struct {
		name   string
		key    string
		addr   string
		reason apperr.Reason
	}{
		{"valid", real["ok"], "", ""},
		{"empty", "", "", apperr.ReasonMissingCredentials},
		{"malformed", "sk-other-123", "", apperr.ReasonInvalidCredentials},
		{"unknown", apikey.Generate(), "", apperr.ReasonInvalidCredentials},
		{"disabled user", real["disabled"], "", apperr.ReasonUserDisabled},
		{"expired", real["expired"], "", apperr.ReasonKeyExpired},
		{"not yet expired", real["later"], "", ""},
		{"ip inside", real["iplist"], "10.2.3.4", ""},
		{"ipv4-mapped inside", real["iplist"], "::ffff:10.2.3.4", ""},
		{"ip outside", real["iplist"], "192.168.1.1", apperr.ReasonIPNotAllowed},
		{"no address known", real["iplist"], "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var addr netip.Addr
			if tt.addr != "" {
				addr = netip.MustParseAddr(tt.addr)
			}
			_, err := a.Authenticate(context.Background(), tt.key, addr)
			if got := apperr.ReasonOf(err); err != nil && got != tt.reason || err == nil && tt.reason != "" {
				t.Fatalf("err = %v, want reason %q", err, tt.reason)
			}
		})
	}
}

func TestAuthenticatorCache(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	v := &fakeVerifier{keys: map[string]Identity{}}
	good, bad := apikey.Generate(), apikey.Generate()
	v.set(good, Identity{UserID: "usr_1", KeyID: "key_1", Active: true})
	a := newAuth(v, clock)
	auth := func(k string) error {
		_, err := a.Authenticate(context.Background(), k, netip.Addr{})
		return err
	}
	steps := []struct {
		name      string
		do        func()
		key       string
		wantErr   bool
		wantCalls int64
	}{
		{"first lookup asks billing", nil, good, false, 1},
		{"cached", nil, good, false, 1},
		{"still cached at 59s", func() { clock.advance(59 * time.Second) }, good, false, 1},
		{"expired at 60s", func() { clock.advance(time.Second) }, good, false, 2},
		{"refusal asks billing", nil, bad, true, 3},
		{"refusal cached", nil, bad, true, 3},
		{"refusal forgotten after 5s", func() { clock.advance(5 * time.Second) }, bad, true, 4},
		{"billing down is not cached", func() { v.down = true; clock.advance(time.Minute) }, good, true, 5},
		{"billing back", func() { v.down = false }, good, false, 6},
		{"evicted by key", func() { a.Evict("key_1", "") }, good, false, 7},
		{"evicted by user", func() { a.Evict("", "usr_1") }, good, false, 8},
		{"other user's eviction keeps it", func() { a.Evict("", "usr_2") }, good, false, 8},
		{"new key refused a moment ago is retried after any eviction", func() {
			_ = auth(bad)
			v.set(bad, Identity{UserID: "usr_9", KeyID: "key_9", Active: true})
			a.Evict("key_9", "usr_9")
		}, bad, false, 10},
	}
	for _, st := range steps {
		if st.do != nil {
			st.do()
		}
		err := auth(st.key)
		if (err != nil) != st.wantErr {
			t.Fatalf("%s: err = %v", st.name, err)
		}
		if got := v.calls.Load(); got != st.wantCalls {
			t.Fatalf("%s: billing calls = %d, want %d", st.name, got, st.wantCalls)
		}
	}
}

// An answer that was in flight when an eviction happened is not cached: it
// may predate the change.
func TestAuthenticatorDoesNotCacheAcrossEviction(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	v := &fakeVerifier{keys: map[string]Identity{}, gate: make(chan struct{})}
	key := apikey.Generate()
	v.set(key, Identity{UserID: "usr_1", KeyID: "key_1", Active: true})
	a := newAuth(v, clock)
	done := make(chan error)
	go func() {
		_, err := a.Authenticate(context.Background(), key, netip.Addr{})
		done <- err
	}()
	for v.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	a.Evict("key_1", "usr_1")
	close(v.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if a.Len() != 0 {
		t.Fatal("answer from before the eviction was cached")
	}
}

func TestAuthenticatorSingleFlight(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	v := &fakeVerifier{keys: map[string]Identity{}, gate: make(chan struct{})}
	key := apikey.Generate()
	v.set(key, Identity{UserID: "usr_1", KeyID: "key_1", Active: true})
	a := newAuth(v, clock)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.Authenticate(context.Background(), key, netip.Addr{}); err != nil {
				t.Error(err)
			}
		}()
	}
	for v.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the others join the flight
	close(v.gate)
	wg.Wait()
	if n := v.calls.Load(); n != 1 {
		t.Fatalf("billing asked %d times for one key", n)
	}
}

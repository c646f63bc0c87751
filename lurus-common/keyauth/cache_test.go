package keyauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit"
)

const pepper = "test-pepper"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock               { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }
func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func key(n byte) string              { return apikey.Prefix + string(make32(n)) }
func make32(n byte) []byte {
	b := []byte("abcdefghijklmnopqrstuvwxyzABCDEF")
	b[0] = 'a' + n%26
	b[1] = 'a' + n/26%26
	return b
}
func hashOf(k string) string { return apikey.Hash(pepper, k) }
func newCache(t *testing.T, v Verifier, cfg Config) *Cache {
	t.Helper()
	c, err := New(v, pepper, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fakeVerifier knows keys by hash; every other hash is unknown.
type fakeVerifier struct {
	calls atomic.Int32
	gate  chan struct{}
	mu    sync.Mutex
	known map[string]Info
	err   error // returned for every call when set
}

func (f *fakeVerifier) add(k string, info Info) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.known == nil {
		f.known = map[string]Info{}
	}
	f.known[hashOf(k)] = info
}

func (f *fakeVerifier) set(err error) { f.mu.Lock(); f.err = err; f.mu.Unlock() }

func (f *fakeVerifier) VerifyHash(_ context.Context, h string) (Info, error) {
	f.calls.Add(1)
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return Info{}, f.err
	}
	info, ok := f.known[h]
	if !ok {
		return Info{}, apperr.New(apperr.ReasonInvalidCredentials, "unknown key")
	}
	return info, nil
}

func TestConfigBounds(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults of the gateway", Config{PositiveTTL: 60 * time.Second, NegativeTTL: 5 * time.Second, StaleTTL: 5 * time.Minute}, true},
		{"positive TTL over 60 s", Config{PositiveTTL: 61 * time.Second}, false},
		{"positive TTL missing", Config{}, false},
		{"negative TTL over 5 s", Config{PositiveTTL: time.Second, NegativeTTL: 6 * time.Second}, false},
		{"stale TTL over 5 min", Config{PositiveTTL: time.Second, StaleTTL: 5*time.Minute + 1}, false},
		{"no stale, no negative", Config{PositiveTTL: time.Second}, true},
	} {
		err := c.cfg.Validate()
		if (err == nil) != c.ok {
			t.Errorf("%s: Validate = %v", c.name, err)
		}
		if _, err := New(&fakeVerifier{}, pepper, c.cfg); (err == nil) != c.ok {
			t.Errorf("%s: New = %v", c.name, err)
		}
	}
	if _, err := New(&fakeVerifier{}, "", Config{PositiveTTL: time.Second}); err == nil {
		t.Error("empty pepper accepted")
	}
}

func TestCacheVerify(t *testing.T) {
	clk := newClock()
	v := &fakeVerifier{gate: make(chan struct{})}
	v.add(key(1), Info{KeyID: "key_1", UserID: "usr_1", UserActive: true})
	c := newCache(t, v, Config{PositiveTTL: time.Minute, NegativeTTL: 5 * time.Second, Now: clk.now})
	ctx := context.Background()

	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = c.Verify(ctx, key(1)) }()
	}
	time.Sleep(20 * time.Millisecond)
	close(v.gate)
	wg.Wait()
	if n := v.calls.Load(); n != 1 {
		t.Fatalf("%d verifications for 20 concurrent misses, want 1 (singleflight)", n)
	}
	clk.add(59 * time.Second)
	if info, err := c.Verify(ctx, key(1)); err != nil || info.KeyID != "key_1" || v.calls.Load() != 1 {
		t.Fatalf("positive entry not used within its TTL: %v %v", info, err)
	}
	clk.add(time.Second)
	_, _ = c.Verify(ctx, key(1))
	if v.calls.Load() != 2 {
		t.Fatal("positive entry used past 60 s without StaleTTL")
	}

	// Refusals without a lookup.
	for k, want := range map[string]apperr.Reason{"": apperr.ReasonMissingCredentials, "sk-other-123": apperr.ReasonInvalidCredentials} {
		if _, err := c.Verify(ctx, k); apperr.ReasonOf(err) != want {
			t.Errorf("Verify(%q) = %v, want %s", k, err, want)
		}
	}
	if _, err := c.VerifyHash(ctx, "not-a-hash"); apperr.ReasonOf(err) != apperr.ReasonInvalidCredentials {
		t.Errorf("VerifyHash(garbage) = %v", err)
	}
	if v.calls.Load() != 2 {
		t.Fatal("a malformed key reached the verifier")
	}

	// Negative entries live 5 s; an outage is not kept.
	if _, err := c.Verify(ctx, key(2)); apperr.ReasonOf(err) != apperr.ReasonInvalidCredentials {
		t.Fatal(err)
	}
	_, _ = c.Verify(ctx, key(2))
	if v.calls.Load() != 3 {
		t.Fatal("refusal not kept")
	}
	clk.add(5 * time.Second)
	v.set(errors.New("billing down"))
	_, err := c.Verify(ctx, key(2))
	if apperr.ReasonOf(err) != apperr.ReasonDependencyDown {
		t.Fatalf("outage reported as %v", err)
	}
	_, _ = c.Verify(ctx, key(2))
	if v.calls.Load() != 5 {
		t.Fatal("an outage was kept")
	}
}

func TestCacheRevocationPassesThrough(t *testing.T) {
	v := &fakeVerifier{}
	c := newCache(t, v, Config{PositiveTTL: time.Minute, NegativeTTL: 5 * time.Second})
	v.set(apperr.New(apperr.ReasonKeyRevoked, "revoked"))
	_, err := c.Verify(context.Background(), key(3))
	if apperr.ReasonOf(err) != apperr.ReasonKeyRevoked || apperr.KindOf(err) != apperr.KindUnauthenticated {
		t.Fatalf("revoked key: %v", err)
	}
}

func TestCacheEvict(t *testing.T) {
	v := &fakeVerifier{}
	v.add(key(1), Info{KeyID: "key_1", UserID: "usr_1", UserActive: true})
	v.add(key(2), Info{KeyID: "key_2", UserID: "usr_1", UserActive: true})
	v.add(key(3), Info{KeyID: "key_3", UserID: "usr_2", UserActive: true})
	c := newCache(t, v, Config{PositiveTTL: time.Minute, NegativeTTL: 5 * time.Second})
	ctx := context.Background()
	verifyAll := func() {
		for i := byte(1); i <= 4; i++ {
			_, _ = c.Verify(ctx, key(i))
		}
	}
	verifyAll() // 4 calls: key 4 is refused and kept
	if p, n := c.Len(); p != 3 || n != 1 {
		t.Fatalf("Len = %d, %d", p, n)
	}
	for _, s := range []struct {
		name          string
		keyID, userID string
		want          int32 // calls of the next verifyAll
	}{
		{"one key", "key_1", "usr_1", 2},        // key 1 and the refusal of key 4
		{"every key of a user", "", "usr_1", 3}, // keys 1, 2 and key 4
		{"another user's key untouched", "key_3", "usr_2", 2},
	} {
		before := v.calls.Load()
		c.Evict(s.keyID, s.userID)
		verifyAll()
		if got := v.calls.Load() - before; got != s.want {
			t.Errorf("%s: %d verifications after Evict, want %d", s.name, got, s.want)
		}
	}

	// A key created right after it was refused is found at once after its
	// key.changed.
	_, _ = c.Verify(ctx, key(5))
	v.add(key(5), Info{KeyID: "key_5", UserID: "usr_3", UserActive: true})
	c.Evict("key_5", "usr_3")
	if _, err := c.Verify(ctx, key(5)); err != nil {
		t.Fatalf("new key still refused after key.changed: %v", err)
	}
}

func TestCacheEvictDuringFetchIsNotKept(t *testing.T) {
	v := &fakeVerifier{gate: make(chan struct{})}
	v.add(key(1), Info{KeyID: "key_1", UserID: "usr_1", UserActive: true})
	c := newCache(t, v, Config{PositiveTTL: time.Minute})
	done := make(chan struct{})
	go func() { _, _ = c.Verify(context.Background(), key(1)); close(done) }()
	for v.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	c.Evict("key_1", "usr_1") // the key changes while billing's answer is on its way
	close(v.gate)
	<-done
	if p, _ := c.Len(); p != 0 {
		t.Fatal("an answer fetched across an eviction was kept")
	}
}

// TestCacheRefusalFloodKeepsVerifiedKeys: random well-formed keys fill only
// the bounded refusal set; the verified keys stay and are served without
// asking billing.
func TestCacheRefusalFloodKeepsVerifiedKeys(t *testing.T) {
	v := &fakeVerifier{}
	const known = 50
	for i := byte(0); i < known; i++ {
		v.add(key(i), Info{KeyID: "key", UserID: "usr", UserActive: true})
	}
	c := newCache(t, v, Config{PositiveTTL: time.Minute, NegativeTTL: 5 * time.Second, MaxEntries: known, MaxNegative: 100})
	ctx := context.Background()
	for i := byte(0); i < known; i++ {
		if _, err := c.Verify(ctx, key(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 5000; i++ {
		random := apikey.Generate()
		if _, err := c.Verify(ctx, random); apperr.ReasonOf(err) != apperr.ReasonInvalidCredentials {
			t.Fatalf("random key: %v", err)
		}
	}
	p, n := c.Len()
	if p != known || n != 100 {
		t.Fatalf("after the flood: %d verified (want %d), %d refusals (want the bound 100)", p, known, n)
	}
	before := v.calls.Load()
	for i := byte(0); i < known; i++ {
		if _, err := c.Verify(ctx, key(i)); err != nil {
			t.Fatal(err)
		}
	}
	if v.calls.Load() != before {
		t.Fatalf("%d verified keys were asked again after the flood", v.calls.Load()-before)
	}
	// The newest refusals are the ones kept.
	last := apikey.Generate()
	_, _ = c.Verify(ctx, last)
	before = v.calls.Load()
	_, _ = c.Verify(ctx, last)
	if v.calls.Load() != before {
		t.Fatal("the newest refusal was not kept")
	}
}

func TestCacheVerifiedBound(t *testing.T) {
	v := &fakeVerifier{}
	for i := byte(0); i < 10; i++ {
		v.add(key(i), Info{KeyID: string('a' + rune(i)), UserID: "usr", UserActive: true})
	}
	c := newCache(t, v, Config{PositiveTTL: time.Minute, MaxEntries: 4})
	for i := byte(0); i < 10; i++ {
		if _, err := c.Verify(context.Background(), key(i)); err != nil {
			t.Fatal(err)
		}
	}
	if p, _ := c.Len(); p != 4 {
		t.Fatalf("%d verified entries, bound 4", p)
	}
	// Indexes follow the entries: evicting the user empties the cache.
	c.Evict("", "usr")
	if p, _ := c.Len(); p != 0 || len(c.byKey) != 0 || len(c.byUser) != 0 {
		t.Fatalf("indexes out of step: %d entries, %d keys, %d users", p, len(c.byKey), len(c.byUser))
	}
}

func TestCacheServesStaleWhileRefreshing(t *testing.T) {
	clk := newClock()
	v := &fakeVerifier{}
	v.add(key(1), Info{KeyID: "key_1", UserID: "usr_1", UserActive: true})
	c := newCache(t, v, Config{PositiveTTL: time.Minute, NegativeTTL: 5 * time.Second, StaleTTL: 5 * time.Minute, Now: clk.now})
	ctx := context.Background()
	if _, err := c.Verify(ctx, key(1)); err != nil {
		t.Fatal(err)
	}
	waitCalls := func(n int32) {
		t.Helper()
		for i := 0; i < 500 && v.calls.Load() < n; i++ {
			time.Sleep(2 * time.Millisecond)
		}
		if got := v.calls.Load(); got != n {
			t.Fatalf("%d verifications, want %d", got, n)
		}
	}
	// Past the TTL: the stale answer is served at once and re-verified in
	// the background.
	clk.add(61 * time.Second)
	v.set(errors.New("billing down"))
	if info, err := c.Verify(ctx, key(1)); err != nil || info.KeyID != "key_1" {
		t.Fatalf("stale entry not served: %v %v", info, err)
	}
	waitCalls(2)
	// Billing down: the entry keeps being served until StaleTTL ends,
	// and no longer (the documented bound: PositiveTTL + StaleTTL).
	clk.add(3 * time.Minute)
	if _, err := c.Verify(ctx, key(1)); err != nil {
		t.Fatalf("stale entry refused during a billing outage: %v", err)
	}
	waitCalls(3)
	clk.add(2 * time.Minute)
	if _, err := c.Verify(ctx, key(1)); apperr.ReasonOf(err) != apperr.ReasonDependencyDown {
		t.Fatalf("entry served past its stale bound with billing down: %v", err)
	}
	// Billing back and the key revoked meanwhile: the refresh replaces the
	// stale entry with the refusal.
	v.set(nil)
	if _, err := c.Verify(ctx, key(1)); err != nil {
		t.Fatal(err)
	}
	clk.add(61 * time.Second)
	v.set(apperr.New(apperr.ReasonKeyRevoked, "revoked"))
	_, _ = c.Verify(ctx, key(1)) // stale, triggers the refresh
	deadline := time.Now().Add(2 * time.Second)
	for {
		if _, err := c.Verify(ctx, key(1)); apperr.ReasonOf(err) == apperr.ReasonKeyRevoked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("revocation found by the refresh not applied")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestCacheAuthenticate(t *testing.T) {
	clk := newClock()
	v := &fakeVerifier{}
	v.add(key(1), Info{KeyID: "key_1", UserID: "usr_1", UserActive: true, ExpiresAt: clk.now().Add(time.Minute),
		AllowedIPs: ParseAllowedIPs([]string{"192.0.2.0/24"})})
	c := newCache(t, v, Config{PositiveTTL: time.Minute, Now: clk.now})
	ctx := context.Background()
	if _, err := c.Authenticate(ctx, key(1), netip.MustParseAddr("192.0.2.8")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Authenticate(ctx, key(1), netip.MustParseAddr("198.51.100.1")); apperr.ReasonOf(err) != apperr.ReasonIPNotAllowed {
		t.Fatalf("other address: %v", err)
	}
	// Expiry applies to the second, cached or not.
	clk.add(time.Minute)
	if _, err := c.Authenticate(ctx, key(1), netip.MustParseAddr("192.0.2.8")); apperr.ReasonOf(err) != apperr.ReasonKeyExpired {
		t.Fatalf("expired key: %v", err)
	}
}

func TestCacheCallerLeavesSharedCall(t *testing.T) {
	v := &fakeVerifier{gate: make(chan struct{})}
	v.add(key(1), Info{KeyID: "key_1", UserID: "usr_1", UserActive: true})
	c := newCache(t, v, Config{PositiveTTL: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := c.Verify(ctx, key(1)); errc <- err }()
	for v.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-errc; apperr.KindOf(err) != apperr.KindUnavailable {
		t.Fatalf("canceled caller: %v", err)
	}
	close(v.gate)
	// The shared call went on without the caller and its answer is kept.
	deadline := time.Now().Add(2 * time.Second)
	for p, _ := c.Len(); p == 0; p, _ = c.Len() {
		if time.Now().After(deadline) {
			t.Fatal("the detached verification was not kept")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRemote(t *testing.T) {
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req internalapi.VerifyKeyRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		switch {
		case req.Key != "":
			t.Errorf("the key itself was sent")
		case req.KeyHash == hashOf(key(1)):
			_ = json.NewEncoder(w).Encode(internalapi.VerifyKeyResponse{KeyID: "key_1", UserID: "usr_1", UserGroup: "vip",
				UserActive: true, ExpiresAt: &exp, Models: []string{"gpt-*"}, AllowedIPs: []string{"10.0.0.0/8", "bad", "::ffff:192.0.2.1"},
				SpendLimitMicros: 7, KeyLimits: ratelimit.Limits{RPM: 5, TPM: 900}, UserLimits: ratelimit.Limits{RPM: 10, Concurrency: 2}})
			return
		case req.KeyHash == hashOf(key(2)):
			_ = json.NewEncoder(w).Encode(internalapi.VerifyKeyResponse{KeyID: "key_2", UserID: "usr_2", UserActive: true, AllowedIPs: []string{"bad"}})
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		_, body := apperr.Render(apperr.New(apperr.ReasonKeyRevoked, "revoked"))
		_ = json.NewEncoder(w).Encode(body)
	}))
	defer srv.Close()
	c := newCache(t, Remote{Client: internalapi.NewClient(srv.URL, "tok", time.Second)}, Config{PositiveTTL: time.Minute})
	ctx := context.Background()
	info, err := c.Verify(ctx, key(1))
	if err != nil {
		t.Fatal(err)
	}
	if info.UserGroup != "vip" || !info.ExpiresAt.Equal(exp) || info.SpendLimitMicros != 7 || len(info.AllowedIPs) != 2 ||
		info.AllowedIPs[1] != netip.MustParsePrefix("192.0.2.1/32") ||
		info.KeyLimits != (ratelimit.Limits{RPM: 5, TPM: 900}) || info.UserLimits != (ratelimit.Limits{RPM: 10, Concurrency: 2}) {
		t.Fatalf("info %+v", info)
	}
	info, err = c.Verify(ctx, key(2))
	if err != nil || info.Authorize(netip.MustParseAddr("192.0.2.1"), time.Now()) == nil {
		t.Fatalf("an allow-list of garbage must admit nothing: %+v %v", info, err)
	}
	if _, err := c.Verify(ctx, key(3)); apperr.ReasonOf(err) != apperr.ReasonKeyRevoked {
		t.Fatalf("revoked: %v", err)
	}
	srv.Close()
	c.Evict("key_1", "usr_1")
	if _, err := c.Verify(ctx, key(1)); apperr.ReasonOf(err) != apperr.ReasonDependencyDown {
		t.Fatalf("billing down: %v", err)
	}
}

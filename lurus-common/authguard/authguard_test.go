package authguard

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func addr(s string) netip.Addr       { return netip.MustParseAddr(s) }
func newGuard(t *testing.T, c *clock, cfg Config) *Guard {
	t.Helper()
	cfg.Now = c.now
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestThrottleAfterLimit(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	refused := 0
	g := newGuard(t, c, Config{Limit: 3, Window: time.Minute, Block: 5 * time.Minute, OnRefuse: func() { refused++ }})
	bad, other := addr("203.0.113.7"), addr("198.51.100.1")
	unknown := apperr.New(apperr.ReasonInvalidCredentials, "no")
	for i := 0; i < 3; i++ {
		if err := g.Check(bad); err != nil {
			t.Fatalf("attempt %d refused: %v", i+1, err)
		}
		g.Observe(bad, unknown)
	}
	err := g.Check(bad)
	if apperr.ReasonOf(err) != apperr.ReasonRateLimited || apperr.RetryAfterHeader(err) != "300" {
		t.Fatalf("4th attempt: %v (Retry-After %q), want RATE_LIMITED for 300 s", err, apperr.RetryAfterHeader(err))
	}
	if refused != 1 {
		t.Errorf("OnRefuse called %d times, want 1", refused)
	}
	if g.Check(other) != nil {
		t.Error("another address is throttled too")
	}
	c.add(4 * time.Minute)
	if h := apperr.RetryAfterHeader(g.Check(bad)); h != "60" {
		t.Errorf("Retry-After a minute before the end = %q, want 60", h)
	}
	c.add(time.Minute)
	if err := g.Check(bad); err != nil {
		t.Fatalf("after the block: %v", err)
	}
	// The count starts again: two more failures do not block.
	g.Fail(bad)
	g.Fail(bad)
	if g.Check(bad) != nil {
		t.Error("blocked again before the limit")
	}
}

func TestWhatCounts(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	g := newGuard(t, c, Config{Limit: 1})
	a := addr("192.0.2.1")
	for _, err := range []error{nil, apperr.New(apperr.ReasonKeyExpired, "x"), apperr.New(apperr.ReasonIPNotAllowed, "x"),
		apperr.New(apperr.ReasonDependencyDown, "x"), apperr.New(apperr.ReasonUserDisabled, "x")} {
		g.Observe(a, err)
	}
	if g.Check(a) != nil {
		t.Fatal("a known key's refusal or an outage counted as a failure")
	}
	for _, r := range []apperr.Reason{apperr.ReasonMissingCredentials, apperr.ReasonInvalidCredentials, apperr.ReasonKeyRevoked, apperr.ReasonInvalidTicket} {
		g := newGuard(t, c, Config{Limit: 1})
		g.Observe(a, apperr.New(r, "x"))
		if g.Check(a) == nil {
			t.Errorf("%s did not count", r)
		}
	}
}

func TestWindowSlides(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	g := newGuard(t, c, Config{Limit: 3, Window: time.Minute})
	a := addr("192.0.2.1")
	g.Fail(a)
	g.Fail(a)
	c.add(61 * time.Second)
	g.Fail(a) // a new window: 1
	g.Fail(a)
	if g.Check(a) != nil {
		t.Fatal("failures of an ended window still counted")
	}
	g.Fail(a)
	if g.Check(a) == nil {
		t.Fatal("3 failures within the window did not block")
	}
}

func TestIPv6CountsPerSlash64(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	g := newGuard(t, c, Config{Limit: 2})
	g.Fail(addr("2001:db8:1:2::1"))
	g.Fail(addr("2001:db8:1:2:ffff::9"))
	if g.Check(addr("2001:db8:1:2::abc")) == nil {
		t.Error("addresses of one /64 counted apart")
	}
	if g.Check(addr("2001:db8:1:3::1")) != nil {
		t.Error("another /64 is throttled")
	}
	g.Fail(addr("::ffff:192.0.2.9"))
	g.Fail(addr("192.0.2.9"))
	if g.Check(addr("192.0.2.9")) == nil {
		t.Error("an IPv4-mapped address counted apart from its IPv4 form")
	}
}

func TestTableIsBounded(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	g := newGuard(t, c, Config{Limit: 1, MaxClients: 100})
	for i := 0; i < 10_000; i++ {
		g.Fail(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	if n := g.Len(); n != 100 {
		t.Fatalf("tracking %d addresses, want the bound 100", n)
	}
	// The newest are kept.
	if g.Check(netip.AddrFrom4([4]byte{10, 0, 39, 15})) == nil { // i = 9999
		t.Error("the newest address was dropped")
	}
}

func TestNilGuardAllows(t *testing.T) {
	var g *Guard
	g.Fail(addr("192.0.2.1"))
	if g.Check(addr("192.0.2.1")) != nil || g.Len() != 0 {
		t.Error("a nil guard refused")
	}
}

func TestValidate(t *testing.T) {
	for _, cfg := range []Config{{Limit: -1}, {Window: -time.Second}, {Block: -1}, {MaxClients: -5}, {MaxClients: 1 << 23}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

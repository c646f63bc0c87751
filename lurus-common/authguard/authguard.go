// Package authguard caps failed authentications per client address, in
// every service that accepts a user's API key (the gateway's relay
// routes, billing-service's user routes, log-service's query routes and
// sync-service's ticket and WebSocket routes). Without it, each wrong key
// costs a lookup (billing reads PostgreSQL; the others ask billing), and
// a client may try keys as fast as it can send them.
//
// A client address (found with package clientip behind the service's
// trusted proxies; IPv6 counted per /64, the block one subscriber gets)
// that fails Limit times within Window is refused for Block with 429
// RATE_LIMITED and a Retry-After header, before its key is looked at: a
// throttled address costs no lookup at all. Successes reset nothing, so
// a client holding one valid key cannot hide a guessing run behind it,
// and another address's failures never affect this one.
//
// A failure is an unauthenticated answer: no key, a key that is not a
// Lurus key, an unknown or revoked key, an invalid ticket. A refusal of a
// known key (expired, user disabled, address not allowed) is not a guess
// and is not counted; nor is an outage of billing.
//
// # Per process, in memory
//
// The counters live in each process, not in Redis. This is an abuse cap,
// not a quota: its job is to make guessing slow and keep the lookup cost
// of a flood bounded, and per-process counters do both without a Redis
// round trip on the refusal path (Redis down must not open or close this
// door). The price is that N replicas allow N × Limit failures per window
// when a load balancer spreads one client over all of them; operators
// size Limit with that in mind.
//
// The table is bounded (MaxClients addresses, replaced oldest first), so
// a flood from many addresses cannot grow memory without bound. Only a
// client with more than MaxClients addresses can push its own blocked
// entry out early, and such a client can spread its guesses anyway.
package authguard

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// Config tunes a Guard. Zero values take the defaults in parentheses.
type Config struct {
	// Limit is how many failures an address may have within Window (30).
	Limit int `yaml:"limit"`
	// Window is the span failures are counted over, from the first (1 min).
	Window time.Duration `yaml:"window"`
	// Block is how long an address that reached Limit is refused (5 min).
	Block time.Duration `yaml:"block"`
	// MaxClients bounds the addresses tracked (65536, about 6 MiB).
	MaxClients int `yaml:"max_clients"`

	// Now is the clock (default time.Now).
	Now func() time.Time `yaml:"-"`
	// OnRefuse is called for every attempt refused because its address is
	// throttled (a metric); it must not block.
	OnRefuse func() `yaml:"-"`
}

// SetDefaults fills zero values with the defaults.
func (c *Config) SetDefaults() {
	if c.Limit == 0 {
		c.Limit = 30
	}
	if c.Window == 0 {
		c.Window = time.Minute
	}
	if c.Block == 0 {
		c.Block = 5 * time.Minute
	}
	if c.MaxClients == 0 {
		c.MaxClients = 65536
	}
}

// Validate checks the settings (after SetDefaults). Services call it from
// their config's Validate.
func (c Config) Validate() error {
	var errs []error
	if c.Limit < 1 {
		errs = append(errs, fmt.Errorf("limit %d must be >= 1", c.Limit))
	}
	if c.Window <= 0 || c.Block <= 0 {
		errs = append(errs, errors.New("window and block must be > 0"))
	}
	if c.MaxClients < 1 || c.MaxClients > 1<<22 {
		errs = append(errs, fmt.Errorf("max_clients %d not in 1..%d", c.MaxClients, 1<<22))
	}
	return errors.Join(errs...)
}

// record is one address's state.
type record struct {
	start    time.Time // of the counting window
	failures int
	until    time.Time // refused before this
}

// Guard counts failed authentications per client address. A nil *Guard
// allows everything and counts nothing (tests that do not need it).
type Guard struct {
	cfg Config

	mu   sync.Mutex
	m    map[netip.Addr]*record
	ring []netip.Addr // addresses in insertion order; the oldest at next once full
	used []bool
	next int
}

// New returns a guard; cfg's zero values take defaults.
func New(cfg Config) (*Guard, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("auth failures: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Guard{cfg: cfg, m: make(map[netip.Addr]*record), ring: make([]netip.Addr, cfg.MaxClients),
		used: make([]bool, cfg.MaxClients)}, nil
}

// bucket is the address failures are counted under: IPv4 as is, IPv6 by
// its /64.
func bucket(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// Check returns nil when client may try to authenticate, or 429
// RATE_LIMITED with the time left of its block as Retry-After. Call it
// before looking the credential up.
func (g *Guard) Check(client netip.Addr) error {
	if g == nil {
		return nil
	}
	now := g.cfg.Now()
	g.mu.Lock()
	r := g.m[bucket(client)]
	var left time.Duration
	if r != nil && now.Before(r.until) {
		left = r.until.Sub(now)
	}
	g.mu.Unlock()
	if left <= 0 {
		return nil
	}
	if g.cfg.OnRefuse != nil {
		g.cfg.OnRefuse()
	}
	return apperr.New(apperr.ReasonRateLimited, "too many failed authentications from this address; try again later").
		WithRetryAfter(left)
}

// Observe counts err against client when it is a failed authentication
// (an unauthenticated apperr); any other outcome changes nothing.
func (g *Guard) Observe(client netip.Addr, err error) {
	if err != nil && apperr.KindOf(err) == apperr.KindUnauthenticated {
		g.Fail(client)
	}
}

// Fail counts one failed authentication from client; the Limit-th within
// Window starts its block.
func (g *Guard) Fail(client netip.Addr) {
	if g == nil {
		return
	}
	now := g.cfg.Now()
	b := bucket(client)
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.m[b]
	if r == nil {
		r = g.insertLocked(b)
	}
	if now.Before(r.until) {
		return // already blocked: refused before it could fail again
	}
	if r.failures == 0 || !now.Before(r.start.Add(g.cfg.Window)) {
		r.start, r.failures = now, 0
	}
	r.failures++
	if r.failures >= g.cfg.Limit {
		r.until, r.failures = now.Add(g.cfg.Block), 0
	}
}

// insertLocked adds b in the next ring slot, dropping the oldest address
// when the table is full.
func (g *Guard) insertLocked(b netip.Addr) *record {
	slot := g.next
	if g.used[slot] {
		delete(g.m, g.ring[slot])
	}
	g.ring[slot], g.used[slot] = b, true
	g.next = (slot + 1) % len(g.ring)
	r := &record{}
	g.m[b] = r
	return r
}

// Len returns how many addresses are tracked.
func (g *Guard) Len() int {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.m)
}

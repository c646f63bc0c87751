package keyauth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// Bounds of a Cache's configuration (see the package doc).
const (
	MaxPositiveTTL = 60 * time.Second
	MaxNegativeTTL = 5 * time.Second
	MaxStaleTTL    = 5 * time.Minute
)

// Verifier asks the key authority (billing-service) about a key by its
// peppered hash. An unknown or revoked key is an unauthenticated
// *apperr.Error; any other error means the authority could not answer.
type Verifier interface {
	VerifyHash(ctx context.Context, hash string) (Info, error)
}

// Config tunes a Cache. Zero values of the optional fields take defaults.
type Config struct {
	// PositiveTTL is how long a verified key is believed (required,
	// ≤ MaxPositiveTTL).
	PositiveTTL time.Duration
	// NegativeTTL is how long a refusal is believed (≤ MaxNegativeTTL; 0:
	// refusals are not kept).
	NegativeTTL time.Duration
	// StaleTTL is how long past PositiveTTL a verified key is still
	// served while it is re-verified in the background or billing cannot
	// answer (≤ MaxStaleTTL; 0: off). See the package doc for the bound.
	StaleTTL time.Duration
	// VerifyTimeout bounds one call to the Verifier (default 5 s). The
	// call is shared by every request waiting for the same key, so it is
	// detached from the first caller's cancellation.
	VerifyTimeout time.Duration
	// MaxEntries bounds verified keys (default 100000).
	MaxEntries int
	// MaxNegative bounds kept refusals (default 10000); past it the
	// oldest is dropped.
	MaxNegative int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.VerifyTimeout <= 0 {
		c.VerifyTimeout = 5 * time.Second
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = 100_000
	}
	if c.MaxNegative <= 0 {
		c.MaxNegative = 10_000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the TTLs against their bounds. Services call it from
// their config's Validate, so a config that would believe a key too long
// is refused at start.
func (c Config) Validate() error {
	var errs []error
	if c.PositiveTTL <= 0 || c.PositiveTTL > MaxPositiveTTL {
		errs = append(errs, fmt.Errorf("key cache: positive TTL %s must be in (0, %s]", c.PositiveTTL, MaxPositiveTTL))
	}
	if c.NegativeTTL < 0 || c.NegativeTTL > MaxNegativeTTL {
		errs = append(errs, fmt.Errorf("key cache: negative TTL %s must be in [0, %s]", c.NegativeTTL, MaxNegativeTTL))
	}
	if c.StaleTTL < 0 || c.StaleTTL > MaxStaleTTL {
		errs = append(errs, fmt.Errorf("key cache: stale TTL %s must be in [0, %s]", c.StaleTTL, MaxStaleTTL))
	}
	if c.MaxEntries < 0 || c.MaxNegative < 0 {
		errs = append(errs, errors.New("key cache: entry bounds must not be negative"))
	}
	return errors.Join(errs...)
}

type entry struct {
	info       Info
	expires    time.Time
	refreshing atomic.Bool // a background re-verification is running
}

type refusal struct {
	err     error
	expires time.Time
	slot    int // its place in Cache.negRing
}

// Cache verifies keys through a Verifier and keeps the answers (see the
// package doc): concurrent misses for one key share one call, Evict drops
// entries at once. It holds keys only as their peppered hashes.
type Cache struct {
	cfg    Config
	v      Verifier
	hasher *apikey.Hasher
	group  singleflight.Group

	mu        sync.RWMutex
	pos       map[string]*entry
	byKey     map[string]map[string]struct{} // key id -> hashes
	byUser    map[string]map[string]struct{} // user id -> hashes
	neg       map[string]refusal
	negRing   []string // hashes of refusals, oldest at negNext once full
	negNext   int
	gen       uint64 // bumped by every eviction
	lastSweep time.Time
}

// New returns a cache in front of v, hashing keys under pepper (the
// $LURUS_KEY_PEPPER billing stores hashes under).
func New(v Verifier, pepper string, cfg Config) (*Cache, error) {
	if pepper == "" {
		return nil, errors.New("key cache: empty pepper")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Cache{cfg: cfg, v: v, hasher: apikey.NewHasher(pepper),
		pos: map[string]*entry{}, byKey: map[string]map[string]struct{}{}, byUser: map[string]map[string]struct{}{},
		neg: map[string]refusal{}, negRing: make([]string, cfg.MaxNegative)}, nil
}

// Hash returns the peppered hash of key: what billing stores and what a
// sync ticket carries instead of the key.
func (c *Cache) Hash(key string) string { return c.hasher.Hash(key) }

// Authenticate verifies key and authorizes its use by client now: the
// whole check for every route that takes a key and names no model.
func (c *Cache) Authenticate(ctx context.Context, key string, client netip.Addr) (Info, error) {
	info, err := c.Verify(ctx, key)
	if err != nil {
		return Info{}, err
	}
	if err := info.Authorize(client, c.cfg.Now()); err != nil {
		return Info{}, err
	}
	return info, nil
}

// Verify returns the info of key, or why it is refused: no key (401
// MISSING_CREDENTIALS), not a Lurus key (401 INVALID_CREDENTIALS, without
// asking billing), unknown or revoked (billing's 401), or billing
// unreachable (503 DEPENDENCY_UNAVAILABLE).
func (c *Cache) Verify(ctx context.Context, key string) (Info, error) {
	if key == "" {
		return Info{}, apperr.New(apperr.ReasonMissingCredentials, "no API key was sent")
	}
	if !apikey.WellFormed(key) {
		return Info{}, apperr.New(apperr.ReasonInvalidCredentials, "the API key is not valid")
	}
	return c.VerifyHash(ctx, c.hasher.Hash(key))
}

// VerifyHash is Verify for a key known only by its peppered hash (a sync
// ticket).
func (c *Cache) VerifyHash(ctx context.Context, hash string) (Info, error) {
	if !wellFormedHash(hash) {
		return Info{}, apperr.New(apperr.ReasonInvalidCredentials, "the API key is not valid")
	}
	now := c.cfg.Now()
	c.mu.RLock()
	e := c.pos[hash]
	r, refused := c.neg[hash]
	c.mu.RUnlock()
	if e != nil {
		if now.Before(e.expires) {
			return e.info, nil
		}
		if now.Before(e.expires.Add(c.cfg.StaleTTL)) {
			if e.refreshing.CompareAndSwap(false, true) {
				go c.refresh(hash, e)
			}
			return e.info, nil
		}
	} else if refused && now.Before(r.expires) {
		return Info{}, r.err
	}
	ch := c.group.DoChan(hash, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.VerifyTimeout)
		defer cancel()
		return c.fetch(ctx, hash)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return Info{}, res.Err
		}
		a := res.Val.(answer)
		return a.info, a.err
	case <-ctx.Done():
		return Info{}, apperr.Wrap(ctx.Err(), apperr.ReasonDependencyDown, "cannot verify the API key now")
	}
}

// answer is a verification that reached the authority: a key or a refusal.
type answer struct {
	info Info
	err  error
}

// fetch asks the verifier and keeps its answer. An outage is returned
// (as DEPENDENCY_UNAVAILABLE) and not kept.
func (c *Cache) fetch(ctx context.Context, hash string) (answer, error) {
	c.mu.RLock()
	gen := c.gen
	c.mu.RUnlock()
	info, err := c.v.VerifyHash(ctx, hash)
	switch {
	case err == nil:
		c.storePositive(hash, info, gen)
		return answer{info: info}, nil
	case apperr.KindOf(err) == apperr.KindUnauthenticated:
		c.storeRefusal(hash, err, gen)
		return answer{err: err}, nil
	default:
		return answer{}, apperr.Wrap(err, apperr.ReasonDependencyDown, "cannot verify the API key now")
	}
}

// refresh re-verifies a stale entry in the background. When billing cannot
// answer, the stale entry stays (until StaleTTL ends) and the next request
// tries again.
func (c *Cache) refresh(hash string, stale *entry) {
	defer stale.refreshing.Store(false)
	ch := c.group.DoChan(hash, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.VerifyTimeout)
		defer cancel()
		return c.fetch(ctx, hash)
	})
	<-ch
}

// storePositive keeps a verified key unless an eviction happened while it
// was fetched (the answer may predate the change: it is used once, not
// kept).
func (c *Cache) storePositive(hash string, info Info, gen uint64) {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	delete(c.neg, hash)
	if _, ok := c.pos[hash]; ok {
		c.dropLocked(hash)
	} else if len(c.pos) >= c.cfg.MaxEntries {
		c.makeRoomLocked(now)
	}
	c.pos[hash] = &entry{info: info, expires: now.Add(c.cfg.PositiveTTL)}
	add := func(m map[string]map[string]struct{}, id string) {
		s := m[id]
		if s == nil {
			s = map[string]struct{}{}
			m[id] = s
		}
		s[hash] = struct{}{}
	}
	add(c.byKey, info.KeyID)
	add(c.byUser, info.UserID)
}

// makeRoomLocked frees one place among verified keys: expired ones are
// swept (at most once a second, the sweep is linear), else an arbitrary
// entry goes (it is verified again on its next use).
func (c *Cache) makeRoomLocked(now time.Time) {
	if now.Sub(c.lastSweep) >= time.Second {
		c.lastSweep = now
		for h, e := range c.pos {
			if !now.Before(e.expires.Add(c.cfg.StaleTTL)) {
				c.dropLocked(h)
			}
		}
	}
	for h := range c.pos {
		if len(c.pos) < c.cfg.MaxEntries {
			break
		}
		c.dropLocked(h)
	}
}

// storeRefusal keeps a refusal in the bounded refusal set, replacing the
// oldest when it is full; a verified entry of the same hash is dropped (a
// refresh found the key revoked).
func (c *Cache) storeRefusal(hash string, err error, gen uint64) {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(hash)
	if gen != c.gen || c.cfg.NegativeTTL <= 0 {
		return
	}
	if r, ok := c.neg[hash]; ok {
		r.err, r.expires = err, now.Add(c.cfg.NegativeTTL)
		c.neg[hash] = r
		return
	}
	slot := c.negNext
	if old := c.negRing[slot]; old != "" {
		if r, ok := c.neg[old]; ok && r.slot == slot {
			delete(c.neg, old)
		}
	}
	c.negRing[slot] = hash
	c.neg[hash] = refusal{err: err, expires: now.Add(c.cfg.NegativeTTL), slot: slot}
	c.negNext = (slot + 1) % len(c.negRing)
}

func (c *Cache) dropLocked(hash string) {
	e := c.pos[hash]
	if e == nil {
		return
	}
	delete(c.pos, hash)
	for _, idx := range []struct {
		m  map[string]map[string]struct{}
		id string
	}{{c.byKey, e.info.KeyID}, {c.byUser, e.info.UserID}} {
		delete(idx.m[idx.id], hash)
		if len(idx.m[idx.id]) == 0 {
			delete(idx.m, idx.id)
		}
	}
}

// Evict drops the entries of keyID, or of every key of userID when keyID
// is empty: what a key.changed event means. Every refusal is dropped too,
// since a key that was just created may have been refused a moment ago.
// An answer being fetched while Evict runs is used once but not kept.
func (c *Cache) Evict(keyID, userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	hs := c.byUser[userID]
	if keyID != "" {
		hs = c.byKey[keyID]
	}
	for h := range hs {
		c.dropLocked(h)
	}
	clear(c.neg)
	clear(c.negRing)
	c.negNext = 0
}

// Len returns the number of verified keys and of refusals held.
func (c *Cache) Len() (verified, refused int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.pos), len(c.neg)
}

// wellFormedHash reports whether s has the shape of apikey.Hash's output
// (64 lower-case hex digits), so garbage never reaches billing.
func wellFormedHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

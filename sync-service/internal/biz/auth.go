package biz

import (
	"context"
	"crypto/sha256"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// Identity is who an authenticated client is.
type Identity struct {
	UserID string
	KeyID  string
	// Active is false for a disabled user.
	Active    bool
	ExpiresAt *time.Time
	// AllowedIPs is the key's address allow-list (empty: any address).
	AllowedIPs []netip.Prefix
}

// KeyVerifier asks the source of truth (billing-service) about an API key.
// An unknown or revoked key is an unauthenticated *apperr.Error; a fault
// reaching billing is an unavailable one.
type KeyVerifier interface {
	VerifyKey(ctx context.Context, key string) (Identity, error)
}

// AuthConfig tunes an Authenticator.
type AuthConfig struct {
	PositiveTTL time.Duration // how long a valid key is trusted (≤ 60 s)
	NegativeTTL time.Duration // how long a refused key stays refused (≤ 5 s)
	MaxEntries  int           // bound on cached keys
	Now         func() time.Time
}

// Authenticator turns an API key into an Identity, caching billing's answer
// briefly. Entries are keyed by a hash of the key, never the key itself.
// Evict drops entries at once when billing announces a key change.
type Authenticator struct {
	verifier KeyVerifier
	cfg      AuthConfig
	flight   singleflight.Group

	mu      sync.Mutex
	gen     uint64 // bumped by every eviction; an answer older than it is not cached
	entries map[[sha256.Size]byte]authEntry
}

type authEntry struct {
	ident   Identity
	err     error
	expires time.Time
}

// NewAuthenticator returns an Authenticator asking v on cache misses.
func NewAuthenticator(v KeyVerifier, cfg AuthConfig) *Authenticator {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 100_000
	}
	return &Authenticator{verifier: v, cfg: cfg, entries: map[[sha256.Size]byte]authEntry{}}
}

// Authenticate checks key for a client connecting from addr (the zero Addr
// skips the key's IP allow-list, for callers that have no address).
func (a *Authenticator) Authenticate(ctx context.Context, key string, addr netip.Addr) (Identity, error) {
	if key == "" {
		return Identity{}, apperr.New(apperr.ReasonMissingCredentials, "an API key is required (Authorization: Bearer or x-api-key)")
	}
	if !apikey.WellFormed(key) {
		return Identity{}, apperr.New(apperr.ReasonInvalidCredentials, "invalid API key")
	}
	ident, err := a.lookup(ctx, key)
	if err != nil {
		return Identity{}, err
	}
	return ident, a.admit(ident, addr)
}

// admit applies the checks that depend on the moment and the address, so a
// cached identity is re-checked on every use.
func (a *Authenticator) admit(ident Identity, addr netip.Addr) error {
	if !ident.Active {
		return apperr.New(apperr.ReasonUserDisabled, "user is disabled")
	}
	if ident.ExpiresAt != nil && !a.cfg.Now().Before(*ident.ExpiresAt) {
		return apperr.New(apperr.ReasonKeyExpired, "API key has expired")
	}
	if len(ident.AllowedIPs) > 0 && addr.IsValid() {
		addr = addr.Unmap()
		for _, p := range ident.AllowedIPs {
			if p.Contains(addr) {
				return nil
			}
		}
		return apperr.New(apperr.ReasonIPNotAllowed, "client address not allowed for this API key")
	}
	return nil
}

func (a *Authenticator) lookup(ctx context.Context, key string) (Identity, error) {
	h := sha256.Sum256([]byte(key))
	now := a.cfg.Now()
	a.mu.Lock()
	e, ok := a.entries[h]
	gen := a.gen
	a.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.ident, e.err
	}
	v, err, _ := a.flight.Do(string(h[:]), func() (any, error) {
		// Detached from the first caller, whose going away must not fail the
		// others waiting on the same key; the verifier has its own timeout.
		ident, err := a.verifier.VerifyKey(context.WithoutCancel(ctx), key)
		a.store(h, gen, ident, err)
		return ident, err
	})
	if err != nil {
		return Identity{}, err
	}
	return v.(Identity), nil
}

// store caches an answer unless an eviction happened since the lookup began
// (the answer may predate the change) or it is a transient fault.
func (a *Authenticator) store(h [sha256.Size]byte, gen uint64, ident Identity, err error) {
	ttl := a.cfg.PositiveTTL
	if err != nil {
		k := apperr.KindOf(err)
		if k != apperr.KindUnauthenticated && k != apperr.KindForbidden {
			return
		}
		ttl = a.cfg.NegativeTTL
	}
	if ttl <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gen != gen {
		return
	}
	now := a.cfg.Now()
	if len(a.entries) >= a.cfg.MaxEntries {
		a.sweepLocked(now)
	}
	if len(a.entries) >= a.cfg.MaxEntries {
		return
	}
	a.entries[h] = authEntry{ident: ident, err: err, expires: now.Add(ttl)}
}

func (a *Authenticator) sweepLocked(now time.Time) {
	for h, e := range a.entries {
		if !now.Before(e.expires) {
			delete(a.entries, h)
		}
	}
}

// Evict forgets keyID, or every key of userID when keyID is empty (the
// meaning of a key.changed event). Negative entries are dropped too, since
// a key just created may have been refused a moment ago.
func (a *Authenticator) Evict(keyID, userID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gen++
	for h, e := range a.entries {
		switch {
		case e.err != nil:
			delete(a.entries, h)
		case keyID != "" && e.ident.KeyID == keyID:
			delete(a.entries, h)
		case keyID == "" && e.ident.UserID == userID:
			delete(a.entries, h)
		}
	}
}

// Len returns the number of cached entries.
func (a *Authenticator) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.entries)
}

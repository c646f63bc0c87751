// Package redisstore is the Redis store of the admission contract
// (lurus-common/admission): the gateway reserves and leases through it,
// billing-service mirrors accounts into it and releases what it settled.
// The key schema and the Lua scripts live only here.
//
// Per user (the {user} hash tag keeps a user's keys in one cluster slot):
//
//	<prefix>adm:{<user>}:acct  HASH  bal credit qlim qused status ver rmic rtok ks:<key> kr:<key>
//	<prefix>adm:{<user>}:res   HASH  reservation id -> "micros|tokens|key id"
//	<prefix>adm:{<user>}:exp   ZSET  reservation id scored by expiry (unix ms)
//
// bal/credit/qlim/qused/status/ver/ks:* mirror PostgreSQL (billing writes
// them with Apply); rmic/rtok/kr:* are the sums of open reservations. A
// reservation succeeds only when bal + credit − rmic ≥ estimate, the token
// quota has room for qused + rtok + tokens, and a key's spend limit has room
// for ks + kr + estimate. Reservations expire (default 10 min) so a crashed
// gateway cannot lock a balance forever; expired ones are purged by the next
// script that touches the user.
package redisstore

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
)

//go:embed common.lua
var commonSrc string

//go:embed reserve.lua
var reserveSrc string

//go:embed release.lua
var releaseSrc string

//go:embed apply.lua
var applySrc string

//go:embed lease.lua
var leaseSrc string

//go:embed release_part.lua
var releasePartSrc string

var (
	reserveScript = redis.NewScript(commonSrc + reserveSrc)
	releaseScript = redis.NewScript(commonSrc + releaseSrc)
	applyScript   = redis.NewScript(commonSrc + applySrc)
	leaseScript   = redis.NewScript(commonSrc + leaseSrc)
	partScript    = redis.NewScript(commonSrc + releasePartSrc)
)

// Store reads and writes admission state.
type Store struct {
	rdb    redis.Scripter
	prefix string
	now    func() time.Time
}

// New returns a Store on rdb whose keys start with prefix.
func New(rdb redis.Scripter, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix, now: time.Now}
}

func (s *Store) keys(userID string) []string {
	base := s.prefix + "adm:{" + userID + "}:"
	return []string{base + "acct", base + "res", base + "exp"}
}

// AcctKey is the name of a user's account hash (tests and tools inspect it).
func (s *Store) AcctKey(userID string) string { return s.keys(userID)[0] }

// Reserve atomically checks and holds r. Reserving an id that is already
// held succeeds without holding twice.
func (s *Store) Reserve(ctx context.Context, r admission.Reservation) (admission.Result, error) {
	args, err := s.reserveArgs(r)
	if err != nil {
		return admission.Result{}, err
	}
	res, err := reserveScript.Run(ctx, s.rdb, s.keys(r.UserID), args...).Int64Slice()
	if err != nil {
		return admission.Result{}, fmt.Errorf("admission: reserve: %w", err)
	}
	return reserveResult(res)
}

func (s *Store) reserveArgs(r admission.Reservation) ([]any, error) {
	if r.ID == "" || r.UserID == "" || r.Micros < 0 || r.Tokens < 0 {
		return nil, errors.New("admission: reservation needs id, user and non-negative amounts")
	}
	ttl := r.TTL
	if ttl <= 0 {
		ttl = admission.DefaultTTL
	}
	now := s.now().UnixMilli()
	return []any{r.ID, r.Micros, r.Tokens, r.KeyID, r.KeySpendLimitMicros, now, now + ttl.Milliseconds()}, nil
}

func reserveResult(res []int64) (admission.Result, error) {
	if len(res) != 3 && len(res) != 4 {
		return admission.Result{}, fmt.Errorf("admission: reserve returned %v", res)
	}
	r := admission.Result{Code: admission.Code(res[0]), AvailableMicros: res[1], QuotaRemainingTokens: res[2]}
	if len(res) == 4 {
		r.HeldMicros = res[3]
	}
	return r, nil
}

// Lease adds r.Micros and r.Tokens to the entry r.ID (creating it) after
// the same checks Reserve makes for the added amounts, and moves the
// entry's expiry to now + r.TTL. A gateway holds such an entry per API key
// as a lease: it admits requests against what it leased without a round
// trip, and billing takes each settled request's estimate back out of it
// with ReleasePart. Adding nothing renews the entry; HeldMicros 0 then
// means it is gone (expired). Unlike Reserve, calling Lease twice holds
// twice.
func (s *Store) Lease(ctx context.Context, r admission.Reservation) (admission.Result, error) {
	args, err := s.reserveArgs(r)
	if err != nil {
		return admission.Result{}, err
	}
	res, err := leaseScript.Run(ctx, s.rdb, s.keys(r.UserID), args...).Int64Slice()
	if err != nil {
		return admission.Result{}, fmt.Errorf("admission: lease: %w", err)
	}
	return reserveResult(res)
}

// releasedTTL is how long the ids released from an entry are remembered:
// past a reservation's life a replay finds no entry to release from.
const releasedTTL = 2 * admission.DefaultTTL

func (s *Store) partKeys(userID, reservationID string) []string {
	k := s.keys(userID)
	return append(k, s.prefix+"adm:{"+userID+"}:rel:"+reservationID)
}

func partArgs(p admission.PartRelease) []any {
	return []any{p.ReservationID, p.RequestID, p.Micros, p.Tokens, releasedTTL.Milliseconds()}
}

// ReleasePart releases p. It is idempotent per request id: a replay
// releases nothing more. It reports whether the request id was new.
func (s *Store) ReleasePart(ctx context.Context, userID string, p admission.PartRelease) (bool, error) {
	n, err := partScript.Run(ctx, s.rdb, s.partKeys(userID, p.ReservationID), partArgs(p)...).Int64()
	if err != nil {
		return false, fmt.Errorf("admission: release part: %w", err)
	}
	return n == 1, nil
}

// Release frees a reservation. It reports whether it was still held
// (false when it expired, was released before, or Redis was flushed).
func (s *Store) Release(ctx context.Context, userID, reservationID string) (bool, error) {
	n, err := releaseScript.Run(ctx, s.rdb, s.keys(userID), reservationID, s.now().UnixMilli()).Int64()
	if err != nil {
		return false, fmt.Errorf("admission: release: %w", err)
	}
	return n == 1, nil
}

// Apply writes a's state into the mirror (unless a newer version is
// already there) and, when releaseID is set, frees that reservation, in one
// atomic step so a reservation never sees the debit and the hold at once.
// It reports whether the state was written.
func (s *Store) Apply(ctx context.Context, a admission.Account, releaseID string) (bool, error) {
	n, err := applyScript.Run(ctx, s.rdb, s.keys(a.UserID), s.applyArgs(a, releaseID)...).Int64()
	if err != nil {
		return false, fmt.Errorf("admission: apply: %w", err)
	}
	return n == 1, nil
}

// Get reads a user's mirrored state (expired reservations may still be
// counted until the next script purges them).
func (s *Store) Get(ctx context.Context, userID string) (admission.State, error) {
	m, err := s.rdb.(redis.Cmdable).HGetAll(ctx, s.AcctKey(userID)).Result()
	if err != nil {
		return admission.State{}, fmt.Errorf("admission: get: %w", err)
	}
	if len(m) == 0 {
		return admission.State{}, nil
	}
	n := func(k string) int64 { v, _ := strconv.ParseInt(m[k], 10, 64); return v }
	return admission.State{
		Found:            true,
		BalanceMicros:    n("bal"),
		CreditMicros:     n("credit"),
		ReservedMicros:   n("rmic"),
		ReservedTokens:   n("rtok"),
		QuotaLimitTokens: n("qlim"),
		QuotaUsedTokens:  n("qused"),
		Active:           m["status"] == "active",
		Version:          n("ver"),
	}, nil
}

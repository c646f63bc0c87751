// Package data implements billing-service's repositories on PostgreSQL:
// users, keys, prices, the ledger, usage records, the transactions of
// settlement (biz.SettleRepo) and of account changes (biz.AccountRepo),
// idempotency keys and the outbox of user events. It says how things are
// stored; what happens is decided in biz.
package data

import (
	"context"
	"encoding/base64"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/postgres"
)

// Store is the PostgreSQL side of billing-service.
type Store struct {
	pool  *pgxpool.Pool
	rules biz.Rules
	now   func() time.Time
}

// NewStore returns a Store on pool applying rules.
func NewStore(pool *pgxpool.Pool, rules biz.Rules) *Store {
	return &Store{pool: pool, rules: rules, now: time.Now}
}

// SetClock replaces the clock (tests move time to roll quota periods).
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// Post books r with biz.Accounts on this store, its rules and its clock.
// The routes call the use case; this is for tools and tests that hold a
// Store.
func (s *Store) Post(ctx context.Context, r biz.PostRequest) (biz.PostResult, error) {
	return s.accountChanges().Post(ctx, r)
}

// RollPeriods rolls quota periods over with biz.Accounts on this store,
// its rules and its clock (see Post).
func (s *Store) RollPeriods(ctx context.Context, limit int) (biz.Effects, error) {
	return s.accountChanges().RollPeriods(ctx, limit)
}

func (s *Store) accountChanges() *biz.Accounts {
	return &biz.Accounts{Repo: s.Accounts(), Rules: s.rules, Now: s.now}
}

// Ping checks the database answers (readiness).
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// encodeCursor and decodeCursor turn a sequence number into an opaque
// cursor.
func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(seq, 10)))
}

func decodeCursor(c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		var n int64
		if n, err = strconv.ParseInt(string(raw), 10, 64); err == nil && n > 0 {
			return n, nil
		}
	}
	return 0, apperr.New(apperr.ReasonInvalidCursor, "cursor is not valid")
}

// inTx runs fn in a transaction, retrying serialization failures and
// deadlocks a few times.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = postgres.InTx(ctx, s.pool, fn); err == nil || !postgres.IsRetryable(err) {
			return rangeError(err)
		}
	}
	return err
}

// rangeError maps PostgreSQL's "bigint out of range" (a sum the Go checks
// did not foresee) to AMOUNT_OUT_OF_RANGE: a 400 on an HTTP route, and a
// refusal that settlement dead-letters instead of retrying forever.
func rangeError(err error) error {
	if postgres.IsNumericOutOfRange(err) {
		return apperr.Wrap(err, apperr.ReasonAmountOutOfRange, "an amount or sum is out of range")
	}
	return err
}

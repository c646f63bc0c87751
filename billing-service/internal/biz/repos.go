package biz

import (
	"context"

	"github.com/lurus-switch/lurus-switch/lurus-common/pricing"
)

// The repositories the routes call directly: where a change holds no
// logic beyond storing it, there is no use case in between (internal/
// data implements them all on PostgreSQL). Account changes go through
// Accounts (repository AccountRepo), settlement through Settlement
// (SettleRepo); the price table's repository is PriceSource.

// UserRepo stores and reads users.
type UserRepo interface {
	CreateUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, id string) (*User, error)
	ListUsers(ctx context.Context, email string, p Page) ([]*User, string, error)
}

// MoneyRepo lists the ledger.
type MoneyRepo interface {
	Ledger(ctx context.Context, userID string, p Page) ([]LedgerEntry, string, error)
}

// KeyRepo stores API keys.
type KeyRepo interface {
	CreateKey(ctx context.Context, k *Key, hash string) error
	GetKey(ctx context.Context, id string) (*Key, error)
	ListKeys(ctx context.Context, userID string) ([]*Key, error)
	UpdateKey(ctx context.Context, id string, fn func(k *Key) error) (*Key, error)
	// KeyByHash returns the key with this keyed hash and the parts of its
	// user that verification needs.
	KeyByHash(ctx context.Context, hash string) (*Key, *User, error)
}

// PriceRepo stores prices and group multipliers; each change returns the
// new price version.
type PriceRepo interface {
	CreatePrice(ctx context.Context, p pricing.Price) (int64, error)
	UpdatePrice(ctx context.Context, p pricing.Price) (int64, error)
	DeletePrice(ctx context.Context, id string) (int64, error)
	SetMultiplier(ctx context.Context, group string, bps int64) (int64, error)
	DeleteMultiplier(ctx context.Context, group string) (int64, error)
}

// ReportRepo queries usage.
type ReportRepo interface {
	Usage(ctx context.Context, f UsageFilter, p Page) ([]UsageRecord, string, error)
	UsageStats(ctx context.Context, f UsageFilter, limit int) ([]UsageStat, error)
}

// MirrorRepo reads a user's state for the Redis admission mirror.
type MirrorRepo interface {
	Mirror(ctx context.Context, userID string) (Mirror, error)
}

// inTx runs fn in a transaction begun by begin (a repository's InTx) and
// returns fn's result of the run that committed: a retried run starts
// from scratch and its result replaces the earlier one.
func inTx[S, T any](ctx context.Context, begin func(context.Context, func(S) error) error, fn func(tx S) (T, error)) (T, error) {
	var res T
	err := begin(ctx, func(tx S) error {
		var err error
		res, err = fn(tx)
		return err
	})
	return res, err
}

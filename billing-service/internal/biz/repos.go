package biz

import (
	"context"

	"github.com/lurus-switch/lurus-switch/lurus-common/pricing"
)

// The repositories the routes call directly: where a change holds no
// logic beyond the Account's, there is no use case in between (internal/
// data implements them all on PostgreSQL). Settlement's repository is
// SettleRepo, the price table's PriceSource.

// UserRepo stores users and changes accounts.
type UserRepo interface {
	CreateUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, id string) (*User, error)
	ListUsers(ctx context.Context, email string, p Page) ([]*User, string, error)
	// WithAccount locks one user, runs fn on its Account and writes the
	// result (user, ledger entries, outbox events) in one transaction.
	WithAccount(ctx context.Context, userID string, fn func(a *Account) error) (*Account, error)
}

// MoneyRepo books top-ups and adjustments and lists the ledger.
type MoneyRepo interface {
	// Post books r once per idempotency key; a key seen before returns
	// the first result.
	Post(ctx context.Context, r PostRequest) (PostResult, error)
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

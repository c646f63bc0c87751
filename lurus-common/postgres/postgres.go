// Package postgres is the PostgreSQL plumbing every service shares: a pool
// from config, InTx, a Querier both a pool and a transaction satisfy, the
// embedded-migration runner and the mapping of driver errors to apperr.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// Config is the database section of a service config.
type Config struct {
	URL             string        `yaml:"url"`
	MaxConns        int32         `yaml:"max_conns"`
	MinConns        int32         `yaml:"min_conns"`
	MaxConnLifetime time.Duration `yaml:"max_conn_lifetime"`
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.MaxConns == 0 {
		c.MaxConns = 16
	}
	if c.MaxConnLifetime == 0 {
		c.MaxConnLifetime = 30 * time.Minute
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.URL == "" {
		return errors.New("database url is required")
	}
	if c.MaxConns < 1 || c.MinConns < 0 || c.MinConns > c.MaxConns {
		return fmt.Errorf("database conns: max %d, min %d", c.MaxConns, c.MinConns)
	}
	return nil
}

// Open creates a pool and checks it answers.
func Open(ctx context.Context, c Config) (*pgxpool.Pool, error) {
	c.SetDefaults()
	pc, err := pgxpool.ParseConfig(c.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	pc.MaxConns = c.MaxConns
	pc.MinConns = c.MinConns
	pc.MaxConnLifetime = c.MaxConnLifetime
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: ping: %w", err)
	}
	return pool, nil
}

// Querier is what data-layer code needs; *pgxpool.Pool, *pgxpool.Conn and
// pgx.Tx all satisfy it, so one repository method works in and out of a
// transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// TxBeginner starts transactions; *pgxpool.Pool satisfies it.
type TxBeginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// InTx runs fn in a transaction that commits when fn returns nil and rolls
// back otherwise (also on panic, which is re-raised).
func InTx(ctx context.Context, db TxBeginner, fn func(tx pgx.Tx) error) (err error) {
	return InTxOptions(ctx, db, pgx.TxOptions{}, fn)
}

// InTxOptions is InTx with explicit transaction options.
func InTxOptions(ctx context.Context, db TxBeginner, opts pgx.TxOptions, fn func(tx pgx.Tx) error) (err error) {
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

// SQLSTATE codes the services map.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeCheckViolation      = "23514"
	codeSerialization       = "40001"
	codeDeadlock            = "40P01"
	codeNumericOutOfRange   = "22003"
)

// IsUniqueViolation reports whether err is a unique-constraint violation,
// optionally of the named constraint.
func IsUniqueViolation(err error, constraint ...string) bool {
	return isCode(err, codeUniqueViolation, constraint...)
}

// IsForeignKeyViolation reports whether err is a foreign-key violation.
func IsForeignKeyViolation(err error) bool { return isCode(err, codeForeignKeyViolation) }

// IsCheckViolation reports whether err is a CHECK constraint violation,
// optionally of the named constraint.
func IsCheckViolation(err error, constraint ...string) bool {
	return isCode(err, codeCheckViolation, constraint...)
}

// IsNumericOutOfRange reports whether err is PostgreSQL refusing a value
// or sum that does not fit its column type (bigint overflow). Retrying the
// same statement fails the same way.
func IsNumericOutOfRange(err error) bool { return isCode(err, codeNumericOutOfRange) }

// IsRetryable reports whether err is a serialization failure or deadlock,
// after which the whole transaction may be retried.
func IsRetryable(err error) bool {
	return isCode(err, codeSerialization) || isCode(err, codeDeadlock)
}

func isCode(err error, code string, constraint ...string) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != code {
		return false
	}
	return len(constraint) == 0 || pgErr.ConstraintName == constraint[0]
}

// MapError maps driver errors to apperr: no rows → notFound, unique
// violation → conflict; anything else is returned unchanged (it becomes an
// internal error at the edge).
func MapError(err error, notFound, conflict apperr.Reason) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return apperr.Wrap(err, notFound, "not found")
	case IsUniqueViolation(err):
		return apperr.Wrap(err, conflict, "already exists")
	}
	return err
}

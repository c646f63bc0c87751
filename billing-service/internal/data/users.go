package data

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/postgres"
)

const userCols = `id, name, email, status, user_group, balance_micros, credit_limit_micros,
	quota_limit_tokens, quota_used_tokens, period_start, low_balance_threshold_micros,
	alert_flags, version, last_event_id, created_at, updated_at, rpm_limit, tpm_limit, concurrency_limit`

func scanUser(row pgx.Row) (*biz.User, error) {
	var u biz.User
	err := row.Scan(&u.ID, &u.Name, &u.Email, &u.Status, &u.Group, &u.BalanceMicros, &u.CreditLimitMicros,
		&u.QuotaLimitTokens, &u.QuotaUsedTokens, &u.PeriodStart, &u.LowBalanceThresholdMicros,
		&u.AlertFlags, &u.Version, &u.LastEventID, &u.CreatedAt, &u.UpdatedAt, &u.RPM, &u.TPM, &u.Concurrency)
	if err != nil {
		return nil, err
	}
	u.PeriodStart = u.PeriodStart.UTC()
	return &u, nil
}

func collectUsers(rows pgx.Rows) ([]*biz.User, error) {
	defer rows.Close()
	var out []*biz.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// CreateUser inserts u (its id, period start and version already set).
func (s *Store) CreateUser(ctx context.Context, u *biz.User) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO users (id, name, email, status, user_group, credit_limit_micros,
		quota_limit_tokens, period_start, low_balance_threshold_micros, version, created_at, updated_at,
		rpm_limit, tpm_limit, concurrency_limit)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14)`,
		u.ID, u.Name, u.Email, u.Status, u.Group, u.CreditLimitMicros, u.QuotaLimitTokens, u.PeriodStart,
		u.LowBalanceThresholdMicros, u.Version, u.CreatedAt, u.RPM, u.TPM, u.Concurrency)
	if postgres.IsUniqueViolation(err) {
		return apperr.Wrap(err, apperr.ReasonAlreadyExists, "a user with this email exists")
	}
	return err
}

// GetUser returns a user (USER_NOT_FOUND when there is none).
func (s *Store) GetUser(ctx context.Context, id string) (*biz.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
	return u, postgres.MapError(err, apperr.ReasonUserNotFound, apperr.ReasonConflict)
}

// ListUsers returns users in id order after the cursor (a user id), only
// the one with that email (case-insensitive) when email is set.
func (s *Store) ListUsers(ctx context.Context, email string, p biz.Page) ([]*biz.User, string, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userCols+` FROM users WHERE id > $1
		AND ($3 = '' OR (email <> '' AND lower(email) = lower($3))) ORDER BY id LIMIT $2`, p.Cursor, p.Limit+1, email)
	if err != nil {
		return nil, "", err
	}
	us, err := collectUsers(rows)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(us) > p.Limit {
		us = us[:p.Limit]
		next = us[len(us)-1].ID
	}
	return us, next, nil
}

// lockUsers reads and locks the users with the given ids in id order, so
// concurrent transactions (and replicas) always lock in the same order and
// cannot deadlock.
func lockUsers(ctx context.Context, q postgres.Querier, ids []string) (map[string]*biz.User, error) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	rows, err := q.Query(ctx, `SELECT `+userCols+` FROM users WHERE id = ANY($1) ORDER BY id FOR UPDATE`, slices.Compact(ids))
	if err != nil {
		return nil, err
	}
	us, err := collectUsers(rows)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*biz.User, len(us))
	for _, u := range us {
		out[u.ID] = u
	}
	return out, nil
}

// UsersBefore returns the ids of users whose period started before start
// (see biz.AccountStore).
func (t storeTx) UsersBefore(ctx context.Context, start time.Time, limit int) ([]string, error) {
	rows, err := t.tx.Query(ctx, `SELECT id FROM users WHERE period_start < $1 ORDER BY id LIMIT $2`, start, limit)
	if err != nil {
		return nil, fmt.Errorf("data: users to roll: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("data: users to roll: %w", err)
	}
	return ids, nil
}

// LockUsers locks the users in id order (lockUsers).
func (t storeTx) LockUsers(ctx context.Context, ids []string) (map[string]*biz.User, error) {
	users, err := lockUsers(ctx, t.tx, ids)
	if err != nil {
		return nil, fmt.Errorf("data: lock users: %w", err)
	}
	return users, nil
}

// errNotFound reports whether err is a pgx no-rows error.
func errNotFound(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

package data

import (
	"context"
	"errors"
	"slices"

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

// WithAccount locks one user, runs fn on it and writes the result in one
// transaction. It returns the account after commit.
func (s *Store) WithAccount(ctx context.Context, userID string, fn func(a *biz.Account) error) (*biz.Account, error) {
	var acct *biz.Account
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		acct, err = s.lockedAccount(ctx, tx, userID, fn)
		return err
	})
	return acct, err
}

func (s *Store) lockedAccount(ctx context.Context, tx pgx.Tx, userID string, fn func(a *biz.Account) error) (*biz.Account, error) {
	us, err := lockUsers(ctx, tx, []string{userID})
	if err != nil {
		return nil, err
	}
	u, ok := us[userID]
	if !ok {
		return nil, apperr.New(apperr.ReasonUserNotFound, "user not found")
	}
	a, err := biz.NewAccount(u, s.rules, s.now())
	if err != nil {
		return nil, err
	}
	if err := fn(a); err != nil {
		return nil, err
	}
	return a, saveAccounts(ctx, tx, []*biz.Account{a})
}

// RollPeriods resets the quota of every user whose monthly period has
// rolled over, in batches, and returns the effects to propagate.
func (s *Store) RollPeriods(ctx context.Context, limit int) (biz.Effects, error) {
	var eff biz.Effects
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		eff = biz.Effects{}
		rows, err := tx.Query(ctx, `SELECT id FROM users WHERE period_start < $1 ORDER BY id LIMIT $2`,
			biz.PeriodStart(s.now()), limit)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(ids) == 0 {
			return err
		}
		us, err := lockUsers(ctx, tx, ids)
		if err != nil {
			return err
		}
		accts := make([]*biz.Account, 0, len(us))
		for _, id := range ids {
			u, ok := us[id]
			if !ok {
				continue
			}
			a, err := biz.NewAccount(u, s.rules, s.now())
			if err != nil {
				return err
			}
			accts = append(accts, a)
		}
		if err := saveAccounts(ctx, tx, accts); err != nil {
			return err
		}
		eff = biz.EffectsOf(accts...)
		return nil
	})
	return eff, err
}

// errNotFound reports whether err is a pgx no-rows error.
func errNotFound(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

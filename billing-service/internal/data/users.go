package data

import (
	"context"
	"errors"
	"fmt"
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

// saveAccounts writes the users, ledger entries and outbox events of
// accounts changed in tx, in one round trip.
func saveAccounts(ctx context.Context, tx pgx.Tx, accts []*biz.Account) error {
	b := &pgx.Batch{}
	queueAccounts(b, accts)
	return sendBatch(ctx, tx, b)
}

// sendBatch sends the statements queued on b in one round trip and
// returns the first error.
func sendBatch(ctx context.Context, tx pgx.Tx, b *pgx.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	err := tx.SendBatch(ctx, b).Close()
	if postgres.IsUniqueViolation(err, "users_email_key") {
		return apperr.Wrap(err, apperr.ReasonAlreadyExists, "a user with this email exists")
	}
	if err != nil {
		return fmt.Errorf("data: write batch: %w", err)
	}
	return nil
}

// queueAccounts queues the writes of accts: users, then their ledger
// entries and outbox events.
func queueAccounts(b *pgx.Batch, accts []*biz.Account) {
	n := len(accts)
	if n == 0 {
		return
	}
	var (
		ids, names, emails, statuses, groups, lastEvents = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		bal, credit, qlim, qused, low, ver               = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		rpm, tpm, conc                                   = make([]int64, n), make([]int64, n), make([]int64, n)
		flags                                            = make([]int32, n)
		periods                                          = make([]any, n)
		ledger                                           []biz.LedgerEntry
		outbox                                           []biz.OutboxEvent
	)
	for i, a := range accts {
		u := a.U
		ids[i], names[i], emails[i], statuses[i], groups[i], lastEvents[i] = u.ID, u.Name, u.Email, u.Status, u.Group, u.LastEventID
		bal[i], credit[i], qlim[i], qused[i], low[i], ver[i] = u.BalanceMicros, u.CreditLimitMicros, u.QuotaLimitTokens, u.QuotaUsedTokens, u.LowBalanceThresholdMicros, u.Version
		flags[i], periods[i] = int32(u.AlertFlags), u.PeriodStart
		rpm[i], tpm[i], conc[i] = u.RPM, u.TPM, u.Concurrency
		ledger = append(ledger, a.Ledger...)
		outbox = append(outbox, a.Events...)
	}
	b.Queue(`UPDATE users AS u SET name = v.name, email = v.email, status = v.status,
		user_group = v.grp, balance_micros = v.bal, credit_limit_micros = v.credit, quota_limit_tokens = v.qlim,
		quota_used_tokens = v.qused, low_balance_threshold_micros = v.low, version = v.ver,
		alert_flags = v.flags, period_start = v.period, last_event_id = v.last_event,
		rpm_limit = v.rpm, tpm_limit = v.tpm, concurrency_limit = v.conc, updated_at = now()
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[],
			$8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::int[], $13::timestamptz[], $14::text[],
			$15::bigint[], $16::bigint[], $17::bigint[])
			AS v(id, name, email, status, grp, bal, credit, qlim, qused, low, ver, flags, period, last_event, rpm, tpm, conc)
		WHERE u.id = v.id`,
		ids, names, emails, statuses, groups, bal, credit, qlim, qused, low, ver, flags, periods, lastEvents, rpm, tpm, conc)
	queueLedger(b, ledger)
	row := queueOutbox(b, outbox)
	for _, a := range accts {
		if len(a.Events) > 0 {
			a.OutboxRow = row
		}
	}
}

func queueLedger(b *pgx.Batch, es []biz.LedgerEntry) {
	if len(es) == 0 {
		return
	}
	n := len(es)
	ids, users, kinds, reqs, notes := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	amounts, after := make([]int64, n), make([]int64, n)
	at := make([]any, n)
	for i, e := range es {
		ids[i], users[i], kinds[i], reqs[i], notes[i] = e.ID, e.UserID, e.Kind, e.RequestID, e.Note
		amounts[i], after[i], at[i] = e.AmountMicros, e.BalanceAfterMicros, e.CreatedAt
	}
	b.Queue(`INSERT INTO ledger_entries (id, user_id, kind, amount_micros, balance_after_micros, request_id, note, created_at)
		SELECT id, user_id, kind, amount, after, NULLIF(req, ''), note, at
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::timestamptz[])
			WITH ORDINALITY AS v(id, user_id, kind, amount, after, req, note, at, ord) ORDER BY ord`,
		ids, users, kinds, amounts, after, reqs, notes, at)
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

package data

// The writes of biz.Account changes: the user rows, their ledger entries
// (the ledger row biz built) and their events in the outbox, queued on one
// pgx.Batch so a change costs one round trip.

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/postgres"
)

// Accounts is the storage of biz.Accounts (biz.AccountRepo): users locked
// and written with their ledger entries, outbox events and idempotency
// keys in one transaction.
type Accounts struct{ s *Store }

// Accounts returns the account repository on s.
func (s *Store) Accounts() Accounts { return Accounts{s: s} }

// InTx runs fn in a transaction (see biz.AccountRepo).
func (r Accounts) InTx(ctx context.Context, fn func(tx biz.AccountStore) error) error {
	return r.s.inTx(ctx, func(tx pgx.Tx) error { return fn(storeTx{tx: tx}) })
}

// storeTx is one transaction seen as biz.SettleStore (settle.go) and
// biz.AccountStore (here, money.go, users.go).
type storeTx struct{ tx pgx.Tx }

// SaveAccounts writes accts (saveAccounts).
func (t storeTx) SaveAccounts(ctx context.Context, accts []*biz.Account) error {
	return saveAccounts(ctx, t.tx, accts)
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

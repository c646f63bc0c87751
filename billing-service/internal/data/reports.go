package data

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
)

// Ledger returns a user's ledger entries, newest first.
func (s *Store) Ledger(ctx context.Context, userID string, p biz.Page) ([]biz.LedgerEntry, string, error) {
	after, err := decodeCursor(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, id, user_id, kind, amount_micros, balance_after_micros,
		COALESCE(request_id, ''), note, created_at FROM ledger_entries
		WHERE user_id = $1 AND ($2 = 0 OR seq < $2) ORDER BY seq DESC LIMIT $3`, userID, after, p.Limit+1)
	if err != nil {
		return nil, "", err
	}
	return collectPage(rows, p.Limit, func(r pgx.CollectableRow, seq *int64) (biz.LedgerEntry, error) {
		var e biz.LedgerEntry
		err := r.Scan(seq, &e.ID, &e.UserID, &e.Kind, &e.AmountMicros, &e.BalanceAfterMicros, &e.RequestID, &e.Note, &e.CreatedAt)
		return e, err
	})
}

// collectPage reads up to limit+1 rows whose first column is a sequence
// number and returns limit items and the cursor of the next page.
func collectPage[T any](rows pgx.Rows, limit int, scan func(r pgx.CollectableRow, seq *int64) (T, error)) ([]T, string, error) {
	var seqs []int64
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) {
		var seq int64
		v, err := scan(r, &seq)
		seqs = append(seqs, seq)
		return v, err
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(items) > limit {
		items = items[:limit]
		next = encodeCursor(seqs[limit-1])
	}
	return items, next, nil
}

func usageWhere(f biz.UsageFilter, first int) (string, []any) {
	return fmt.Sprintf(`($%d = '' OR user_id = $%d) AND ($%d = '' OR model = $%d)
		AND ($%d::timestamptz IS NULL OR finished_at >= $%d) AND ($%d::timestamptz IS NULL OR finished_at < $%d)`,
			first, first, first+1, first+1, first+2, first+2, first+3, first+3),
		[]any{f.UserID, f.Model, nullTime(f.From), nullTime(f.To)}
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Usage returns usage records matching f, newest first.
func (s *Store) Usage(ctx context.Context, f biz.UsageFilter, p biz.Page) ([]biz.UsageRecord, string, error) {
	after, err := decodeCursor(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	where, args := usageWhere(f, 3)
	rows, err := s.pool.Query(ctx, `SELECT seq, request_id, user_id, key_id, model, upstream_model, provider_id,
		api_format, endpoint, stream, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens,
		reasoning_tokens, usage_source, status, reservation_id, cost_micros, started_at, finished_at FROM usage_records
		WHERE ($1 = 0 OR seq < $1) AND `+where+` ORDER BY seq DESC LIMIT $2`, append([]any{after, p.Limit + 1}, args...)...)
	if err != nil {
		return nil, "", err
	}
	return collectPage(rows, p.Limit, func(r pgx.CollectableRow, seq *int64) (biz.UsageRecord, error) {
		var u biz.UsageRecord
		err := r.Scan(seq, &u.RequestID, &u.UserID, &u.KeyID, &u.Model, &u.UpstreamModel, &u.ProviderID,
			&u.APIFormat, &u.Endpoint, &u.Stream, &u.PromptTokens, &u.CompletionTokens, &u.CachedTokens,
			&u.CacheWriteTokens, &u.ReasoningTokens, &u.UsageSource, &u.Status, &u.ReservationID, &u.CostMicros, &u.StartedAt, &u.FinishedAt)
		return u, err
	})
}

// UsageStats aggregates usage records matching f per user, model and UTC
// day, newest day first.
func (s *Store) UsageStats(ctx context.Context, f biz.UsageFilter, limit int) ([]biz.UsageStat, error) {
	where, args := usageWhere(f, 2)
	rows, err := s.pool.Query(ctx, `SELECT to_char(date_trunc('day', finished_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS day,
		user_id, model, count(*), sum(prompt_tokens)::bigint, sum(completion_tokens)::bigint, sum(cost_micros)::bigint
		FROM usage_records WHERE `+where+`
		GROUP BY 1, 2, 3 ORDER BY 1 DESC, 2, 3 LIMIT $1`, append([]any{limit}, args...)...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (biz.UsageStat, error) {
		var st biz.UsageStat
		err := r.Scan(&st.Day, &st.UserID, &st.Model, &st.Requests, &st.PromptTokens, &st.CompletionTokens, &st.CostMicros)
		return st, err
	})
	return out, rangeError(err) // a day's sum beyond bigint is 400, not 500
}

// LedgerMismatch lists users whose balance differs from the sum of their
// ledger entries (always empty; tests and operators check it).
func (s *Store) LedgerMismatch(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT u.id FROM users u
		LEFT JOIN (SELECT user_id, sum(amount_micros) AS total FROM ledger_entries GROUP BY user_id) l ON l.user_id = u.id
		WHERE u.balance_micros <> COALESCE(l.total, 0) ORDER BY u.id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

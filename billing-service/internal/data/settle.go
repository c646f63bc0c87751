package data

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
)

// Settlements is the storage of settlement (biz.SettleRepo): usage
// records, and the accounts and key spends they change, written in one
// transaction.
type Settlements struct{ s *Store }

// Settlements returns the settlement repository on s.
func (s *Store) Settlements() Settlements { return Settlements{s: s} }

// InTx runs fn in a transaction (see biz.SettleRepo).
func (r Settlements) InTx(ctx context.Context, fn func(tx biz.SettleStore) error) error {
	return r.s.inTx(ctx, func(tx pgx.Tx) error { return fn(storeTx{tx: tx}) })
}

// RecordUsage inserts the records into usage_records with ON CONFLICT
// (request_id) DO NOTHING and returns the request ids that were new.
func (t storeTx) RecordUsage(ctx context.Context, rs []biz.UsageRecord) (map[string]bool, error) {
	inserted := make(map[string]bool, len(rs))
	if len(rs) == 0 {
		return inserted, nil
	}
	n := len(rs)
	var (
		req, user, key, model, upModel, prov, format, endpoint, source, status, resv = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		prompt, completion, cached, write, reasoning, cost                           = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		stream                                                                       = make([]bool, n)
		started, finished                                                            = make([]time.Time, n), make([]time.Time, n)
	)
	for j, r := range rs {
		req[j], user[j], key[j], model[j], upModel[j], prov[j] = r.RequestID, r.UserID, r.KeyID, r.Model, r.UpstreamModel, r.ProviderID
		format[j], endpoint[j], source[j], status[j], resv[j] = r.APIFormat, r.Endpoint, r.UsageSource, r.Status, r.ReservationID
		prompt[j], completion[j], cached[j], write[j], reasoning[j], cost[j] = r.PromptTokens, r.CompletionTokens, r.CachedTokens, r.CacheWriteTokens, r.ReasoningTokens, r.CostMicros
		stream[j] = r.Stream
		started[j], finished[j] = r.StartedAt, r.FinishedAt
	}
	rows, err := t.tx.Query(ctx, `INSERT INTO usage_records (request_id, user_id, key_id, model, upstream_model,
			provider_id, api_format, endpoint, usage_source, status, reservation_id, prompt_tokens, completion_tokens,
			cached_tokens, cache_write_tokens, reasoning_tokens, cost_micros, stream, started_at, finished_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[], $13::bigint[], $14::bigint[],
			$15::bigint[], $16::bigint[], $17::bigint[], $18::boolean[], $19::timestamptz[], $20::timestamptz[])
		ON CONFLICT (request_id) DO NOTHING RETURNING request_id`,
		req, user, key, model, upModel, prov, format, endpoint, source, status, resv,
		prompt, completion, cached, write, reasoning, cost, stream, started, finished)
	if err != nil {
		return nil, fmt.Errorf("data: insert usage: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("data: insert usage: %w", err)
	}
	for _, id := range ids {
		inserted[id] = true
	}
	return inserted, nil
}

// Write sends every write of w in one round trip: the accounts' user
// rows, ledger entries and outbox row (queueAccounts, accounts.go), then
// the key spend. Keys charged report their spend from the UPDATE, in key
// id order (one lock order for concurrent batches); the others are read.
func (t storeTx) Write(ctx context.Context, w biz.SettleWrites) (map[string]int64, error) {
	b := &pgx.Batch{}
	queueAccounts(b, w.Accounts)
	spent := map[string]int64{}
	scanSpent := func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			var v int64
			if err := rows.Scan(&id, &v); err != nil {
				return err
			}
			spent[id] = v
		}
		return rows.Err()
	}
	if len(w.KeySpend) > 0 {
		ids := slices.Sorted(maps.Keys(w.KeySpend))
		ds := make([]int64, len(ids))
		for i, k := range ids {
			ds[i] = w.KeySpend[k]
		}
		b.Queue(`UPDATE api_keys AS k SET spent_micros = k.spent_micros + v.d
			FROM unnest($1::text[], $2::bigint[]) AS v(id, d) WHERE k.id = v.id
			RETURNING k.id, k.spent_micros`, ids, ds).Query(scanSpent)
	}
	if len(w.ReadKeys) > 0 {
		b.Queue(`SELECT id, spent_micros FROM api_keys WHERE id = ANY($1)`, w.ReadKeys).Query(scanSpent)
	}
	if err := sendBatch(ctx, t.tx, b); err != nil {
		return nil, err
	}
	return spent, nil
}

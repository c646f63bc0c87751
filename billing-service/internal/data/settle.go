package data

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/admission"

	"github.com/jackc/pgx/v5"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

// Settle records and bills a batch of billing.usage payloads in one
// transaction: the users concerned are locked in id order; every usage is
// inserted into usage_records with ON CONFLICT (request_id) DO NOTHING; only
// the rows actually inserted are debited (ledger entry, balance, quota, key
// spend) and announced (events written to the outbox). Replaying any usage
// any number of times changes nothing. A transient error returns err and
// commits nothing.
func (s *Store) Settle(ctx context.Context, us []events.Usage, pricer biz.Pricer) (biz.SettleResult, error) {
	var res biz.SettleResult
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		res, err = s.settleTx(ctx, tx, us, pricer)
		return err
	})
	return res, err
}

type candidate struct {
	idx  int
	cost int64
}

func (s *Store) settleTx(ctx context.Context, tx pgx.Tx, us []events.Usage, pricer biz.Pricer) (biz.SettleResult, error) {
	res := biz.SettleResult{Errs: make([]error, len(us))}
	now := s.nowUTC()
	userIDs := make([]string, 0, len(us))
	for i, u := range us {
		if err := biz.CheckUsage(u); err != nil {
			res.Errs[i] = err
			continue
		}
		userIDs = append(userIDs, u.UserID)
	}
	users, err := lockUsers(ctx, tx, userIDs)
	if err != nil {
		return res, fmt.Errorf("data: lock users: %w", err)
	}
	var cands []candidate
	// refused are usages of known users that will not be settled (absurd
	// counts or cost, no price): they are dead-lettered, but their holds
	// are released like a settled usage's, or the user would stay blocked
	// by a request that is over.
	var refused []int
	seen := make(map[string]bool, len(us))
	for i, u := range us {
		if res.Errs[i] != nil {
			continue
		}
		user, ok := users[u.UserID]
		if !ok {
			res.Errs[i] = biz.ErrUnknownUser
			continue
		}
		cost, err := s.priceChecked(pricer, u, user.Group)
		if err != nil {
			res.Errs[i] = err
			refused = append(refused, i)
			continue
		}
		if !seen[u.RequestID] { // a second copy in one batch is a duplicate
			seen[u.RequestID] = true
			cands = append(cands, candidate{idx: i, cost: cost})
		}
	}
	inserted, err := insertUsage(ctx, tx, us, cands, now)
	if err != nil {
		return res, err
	}

	accts := map[string]*biz.Account{}
	var order []*biz.Account
	keyDelta := map[string]int64{}
	for _, c := range cands {
		u := us[c.idx]
		if !inserted[u.RequestID] {
			continue
		}
		a := accts[u.UserID]
		if a == nil {
			if a, err = biz.NewAccount(users[u.UserID], s.rules, now); err != nil {
				return res, err
			}
			accts[u.UserID] = a
			order = append(order, a)
		}
		if _, err := a.Charge(u, c.cost); err != nil {
			return res, err
		}
		if c.cost > 0 && u.KeyID != "" {
			keyDelta[u.KeyID] += c.cost
		}
		res.Recorded = append(res.Recorded, biz.UsageRecord{Usage: u, CostMicros: c.cost})
	}
	// Every write, and the spend of the batch's keys after it, in one round
	// trip. Keys charged in this batch report their spend from the UPDATE;
	// the others (replays, free requests) are read.
	b := &pgx.Batch{}
	queueAccounts(b, order)
	spends := map[string]int64{}
	scanSpends := func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			var v int64
			if err := rows.Scan(&id, &v); err != nil {
				return err
			}
			spends[id] = v
		}
		return rows.Err()
	}
	if len(keyDelta) > 0 {
		ids := slices.Sorted(maps.Keys(keyDelta)) // one lock order for concurrent batches
		ds := make([]int64, len(ids))
		for i, k := range ids {
			ds[i] = keyDelta[k]
		}
		b.Queue(`UPDATE api_keys AS k SET spent_micros = k.spent_micros + v.d
			FROM unnest($1::text[], $2::bigint[]) AS v(id, d) WHERE k.id = v.id
			RETURNING k.id, k.spent_micros`, ids, ds).Query(scanSpends)
	}
	var others []string
	for _, c := range cands {
		if k := us[c.idx].KeyID; k != "" && keyDelta[k] == 0 && !slices.Contains(others, k) {
			others = append(others, k)
		}
	}
	if len(others) > 0 {
		b.Queue(`SELECT id, spent_micros FROM api_keys WHERE id = ANY($1)`, others).Query(scanSpends)
	}
	if err := sendBatch(ctx, tx, b); err != nil {
		return res, err
	}

	// Mirror every user of the batch, replays included: a redelivery after
	// a failed mirror write repairs it and releases the holds.
	mirrors := map[string]*biz.Mirror{}
	release := make([]int, 0, len(cands)+len(refused))
	for _, c := range cands {
		release = append(release, c.idx)
	}
	for _, i := range append(release, refused...) {
		u := us[i]
		m := mirrors[u.UserID]
		if m == nil {
			mm := biz.MirrorOf(users[u.UserID])
			mm.KeySpentMicros = map[string]int64{}
			m = &mm
			mirrors[u.UserID] = m
		}
		if v, ok := spends[u.KeyID]; ok {
			m.KeySpentMicros[u.KeyID] = v
		}
		switch {
		case u.ReservationID != "" && u.ReservedMicros > 0:
			m.Parts = append(m.Parts, admission.PartRelease{ReservationID: u.ReservationID, RequestID: u.RequestID,
				Micros: u.ReservedMicros, Tokens: u.ReservedTokens})
		case u.ReservationID != "":
			m.ReleaseIDs = append(m.ReleaseIDs, u.ReservationID)
		}
	}
	for _, m := range mirrors {
		res.Effects.Mirrors = append(res.Effects.Mirrors, *m)
	}
	ev := biz.EffectsOf(order...)
	res.Effects.Events, res.Effects.OutboxRows = ev.Events, ev.OutboxRows
	return res, nil
}

// priceChecked prices u after holding it to the per-request ceilings.
func (s *Store) priceChecked(pricer biz.Pricer, u events.Usage, group string) (int64, error) {
	if err := s.rules.CheckTokens(u); err != nil {
		return 0, err
	}
	cost, err := biz.PriceUsage(pricer, u, group)
	if err != nil {
		return 0, err
	}
	return cost, s.rules.CheckCost(cost)
}

// insertUsage inserts the candidates' rows and returns the request ids
// that were new.
func insertUsage(ctx context.Context, tx pgx.Tx, us []events.Usage, cands []candidate, now time.Time) (map[string]bool, error) {
	inserted := make(map[string]bool, len(cands))
	if len(cands) == 0 {
		return inserted, nil
	}
	n := len(cands)
	var (
		req, user, key, model, upModel, prov, format, endpoint, source, status, resv = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		prompt, completion, cached, write, reasoning, cost                           = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		stream                                                                       = make([]bool, n)
		started, finished                                                            = make([]time.Time, n), make([]time.Time, n)
	)
	for j, c := range cands {
		u := us[c.idx]
		req[j], user[j], key[j], model[j], upModel[j], prov[j] = u.RequestID, u.UserID, u.KeyID, u.Model, u.UpstreamModel, u.ProviderID
		format[j], endpoint[j], source[j], status[j], resv[j] = u.APIFormat, u.Endpoint, u.UsageSource, u.Status, u.ReservationID
		prompt[j], completion[j], cached[j], write[j], reasoning[j], cost[j] = u.PromptTokens, u.CompletionTokens, u.CachedTokens, u.CacheWriteTokens, u.ReasoningTokens, c.cost
		stream[j] = u.Stream
		started[j], finished[j] = orNow(u.StartedAt, now), orNow(u.FinishedAt, now)
	}
	rows, err := tx.Query(ctx, `INSERT INTO usage_records (request_id, user_id, key_id, model, upstream_model,
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

func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t
}

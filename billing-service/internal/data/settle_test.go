package data_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/data"
	"github.com/lurus-switch/lurus-switch/billing-service/migrations"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/pricing"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

// env is a Store on a database of the test's own.
type env struct {
	t     *testing.T
	db    testenv.PostgresDB
	store *data.Store
}

func newEnv(t *testing.T) env {
	db := testenv.Postgres(t, migrations.FS, migrations.Dir)
	return env{t: t, db: db, store: data.NewStore(db.Pool, biz.Rules{})}
}

// user creates a user topped up to balance, with one key of that id.
func (e env) user(id, keyID string, balance int64) {
	e.t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	if err := e.store.CreateUser(ctx, &biz.User{ID: id, Name: id, Status: biz.StatusActive, Group: biz.DefaultGroup,
		PeriodStart: biz.PeriodStart(now), Version: 1, CreatedAt: now}); err != nil {
		e.t.Fatal(err)
	}
	if balance != 0 {
		if _, err := e.store.Post(ctx, biz.PostRequest{UserID: id, Kind: biz.KindTopup, AmountMicros: balance,
			IdemKey: "init-" + id, RequestHash: "h"}); err != nil {
			e.t.Fatal(err)
		}
	}
	if keyID != "" {
		if err := e.store.CreateKey(ctx, &biz.Key{ID: keyID, UserID: id, Status: biz.KeyActive, Prefix: "sk-",
			Models: []string{}, AllowedIPs: []string{}, CreatedAt: now}, "hash-"+keyID); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e env) count(sql string, args ...any) int64 {
	e.t.Helper()
	var n int64
	if err := e.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func record(req, user, key string, cost int64) biz.UsageRecord {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return biz.UsageRecord{Usage: events.Usage{RequestID: req, UserID: user, KeyID: key, Model: "gpt-test",
		UpstreamModel: "gpt-test-0", ProviderID: "prov", APIFormat: "openai", Endpoint: "/v1/chat/completions",
		UsageSource: events.UsageSourceUpstream, Status: events.StatusOK, ReservationID: "resv-" + req,
		PromptTokens: 10, CompletionTokens: 20, CachedTokens: 3, CacheWriteTokens: 4, ReasoningTokens: 5, Stream: true,
		StartedAt: now.Add(-time.Second), FinishedAt: now}, CostMicros: cost}
}

// TestSettleStoreLocksUsers: the users asked for that exist come back
// (duplicates and unknown ids allowed), as stored.
func TestSettleStoreLocksUsers(t *testing.T) {
	e := newEnv(t)
	e.user("usr_a", "", 100)
	e.user("usr_b", "", 0)
	err := e.store.Settlements().InTx(context.Background(), func(tx biz.SettleStore) error {
		us, err := tx.LockUsers(context.Background(), []string{"usr_b", "usr_a", "usr_ghost", "usr_a"})
		if err != nil {
			return err
		}
		if got := slices.Sorted(maps.Keys(us)); !slices.Equal(got, []string{"usr_a", "usr_b"}) {
			t.Errorf("locked %v", got)
		}
		if us["usr_a"].BalanceMicros != 100 || us["usr_a"].Version != 2 {
			t.Errorf("usr_a as read: %+v", us["usr_a"])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSettleStoreRecordsUsageOnce: a request id is inserted once; the
// second time it is not among the ids returned, and the row keeps its
// first values.
func TestSettleStoreRecordsUsageOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	first := record("req-1", "usr_a", "key_a", 42)
	var got []map[string]bool
	for _, batch := range [][]biz.UsageRecord{{first, record("req-2", "usr_a", "", 0)}, {record("req-1", "usr_a", "key_a", 99), record("req-3", "usr_b", "", 1)}} {
		err := e.store.Settlements().InTx(ctx, func(tx biz.SettleStore) error {
			ins, err := tx.RecordUsage(ctx, batch)
			got = append(got, ins)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !maps.Equal(got[0], map[string]bool{"req-1": true, "req-2": true}) || !maps.Equal(got[1], map[string]bool{"req-3": true}) {
		t.Fatalf("inserted %v", got)
	}
	recs, _, err := e.store.Usage(ctx, biz.UsageFilter{UserID: "usr_a"}, biz.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var r1 biz.UsageRecord
	for _, r := range recs {
		if r.RequestID == "req-1" {
			r1 = r
		}
	}
	// every column round-trips, and the replay did not overwrite the cost
	a, _ := json.Marshal(r1)
	b, _ := json.Marshal(first)
	if len(recs) != 2 || string(a) != string(b) {
		t.Errorf("stored %d records; req-1 stored as\n%s\nwant\n%s", len(recs), a, b)
	}
}

// TestSettleStoreWrites: Write stores the accounts (user row, ledger
// entry, one outbox row with the events, its id set on the account), adds
// key spend, and returns the spend of the keys charged and read.
func TestSettleStoreWrites(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.user("usr_a", "key_a", 1000)
	e.user("usr_b", "key_b", 0)
	var acct *biz.Account
	var spent map[string]int64
	err := e.store.Settlements().InTx(ctx, func(tx biz.SettleStore) error {
		us, err := tx.LockUsers(ctx, []string{"usr_a"})
		if err != nil {
			return err
		}
		if acct, err = biz.NewAccount(us["usr_a"], biz.Rules{}, time.Now()); err != nil {
			return err
		}
		if _, err := acct.Charge(record("req-1", "usr_a", "key_a", 0).Usage, 300); err != nil {
			return err
		}
		spent, err = tx.Write(ctx, biz.SettleWrites{Accounts: []*biz.Account{acct},
			KeySpend: map[string]int64{"key_a": 300}, ReadKeys: []string{"key_b", "key_ghost"}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(spent, map[string]int64{"key_a": 300, "key_b": 0}) {
		t.Errorf("spent %v", spent)
	}
	u, err := e.store.GetUser(ctx, "usr_a")
	if err != nil || u.BalanceMicros != 700 || u.QuotaUsedTokens != 30 || u.Version != acct.U.Version || u.LastEventID != acct.U.LastEventID {
		t.Errorf("stored user %+v, %v; want the account's %+v", u, err, acct.U)
	}
	ledger, _, err := e.store.Ledger(ctx, "usr_a", biz.Page{Limit: 10})
	if err != nil || len(ledger) != 2 || ledger[0].ID != acct.Ledger[0].ID || ledger[0].AmountMicros != -300 || ledger[0].RequestID != "req-1" {
		t.Errorf("ledger %+v, %v", ledger, err)
	}
	if bad, err := e.store.LedgerMismatch(ctx); err != nil || len(bad) != 0 {
		t.Errorf("balance != sum(ledger) for %v (%v)", bad, err)
	}
	rows, evs, err := e.store.PendingOutbox(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rows, acct.OutboxRow) {
		t.Errorf("outbox rows %v lack the account's %q", rows, acct.OutboxRow)
	}
	var ids []string
	for _, ev := range evs {
		ids = append(ids, ev.ID)
	}
	for _, ev := range acct.Events {
		if !slices.Contains(ids, ev.ID) {
			t.Errorf("event %s %s not in the outbox", ev.Type, ev.ID)
		}
	}
}

// TestSettleStoreRollsBack: an error from fn commits nothing of the
// transaction.
func TestSettleStoreRollsBack(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	boom := errors.New("boom")
	err := e.store.Settlements().InTx(ctx, func(tx biz.SettleStore) error {
		if _, err := tx.RecordUsage(ctx, []biz.UsageRecord{record("req-1", "usr_a", "", 1)}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if n := e.count(`SELECT count(*) FROM usage_records`); n != 0 {
		t.Errorf("%d usage records after a rollback", n)
	}
}

// TestSettleStoreOutOfRange: a key spend PostgreSQL cannot hold is an
// overflow refusal (which the consumer dead-letters), not a transient
// error, and nothing is written.
func TestSettleStoreOutOfRange(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.user("usr_a", "key_a", 0)
	if _, err := e.db.Pool.Exec(ctx, `UPDATE api_keys SET spent_micros = $1`, int64(math.MaxInt64-5)); err != nil {
		t.Fatal(err)
	}
	err := e.store.Settlements().InTx(ctx, func(tx biz.SettleStore) error {
		if _, err := tx.RecordUsage(ctx, []biz.UsageRecord{record("req-1", "usr_a", "key_a", 10)}); err != nil {
			return err
		}
		_, err := tx.Write(ctx, biz.SettleWrites{KeySpend: map[string]int64{"key_a": 10}})
		return err
	})
	if !biz.IsOverflow(err) {
		t.Fatalf("err %v, want an overflow refusal", err)
	}
	if n := e.count(`SELECT count(*) FROM usage_records`); n != 0 {
		t.Errorf("%d usage records after a refused transaction", n)
	}
}

// TestSettlementOnPostgres runs the use case on the real repository: a
// batch with a replay and a duplicate is charged once per request.
func TestSettlementOnPostgres(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.user("usr_a", "key_a", 10_000)
	s := &biz.Settlement{Repo: e.store.Settlements()}
	u := record("req-1", "usr_a", "key_a", 0).Usage
	prices := fixedPrice(7)
	for range 2 {
		res, err := s.Settle(ctx, []events.Usage{u, u}, prices)
		if err != nil || res.Errs[0] != nil || res.Errs[1] != nil {
			t.Fatalf("settle: %v %v", err, res.Errs)
		}
	}
	if n := e.count(`SELECT count(*) FROM ledger_entries WHERE kind = 'usage'`); n != 1 {
		t.Errorf("%d usage ledger entries, want 1", n)
	}
	k, err := e.store.GetKey(ctx, "key_a")
	if err != nil || k.SpentMicros != 7 {
		t.Errorf("key spend %+v, %v", k, err)
	}
	if u, _ := e.store.GetUser(ctx, "usr_a"); u.BalanceMicros != 10_000-7 {
		t.Errorf("balance %d", u.BalanceMicros)
	}
}

// fixedPrice prices every request at the same cost.
type fixedPrice int64

func (p fixedPrice) Cost(string, string, pricing.Tokens) (int64, error) { return int64(p), nil }

package biz

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/pricing"
)

// memRepo is an in-memory SettleRepo. A transaction works on copies and
// stages its writes; they reach the committed state only when fn returns
// nil, as in PostgreSQL.
type memRepo struct {
	users    map[string]User
	recorded map[string]UsageRecord
	keySpent map[string]int64
	ledger   []LedgerEntry
	outbox   [][]OutboxEvent
	// retries makes InTx run fn this many times more, rolling back each
	// run but the last (a serialization failure retried).
	retries int
	// failWrite is returned by the next Write.
	failWrite error
	// locked are the ids of each LockUsers call; writes each Write's
	// argument.
	locked [][]string
	writes []SettleWrites
}

func newRepo(users ...User) *memRepo {
	r := &memRepo{users: map[string]User{}, recorded: map[string]UsageRecord{}, keySpent: map[string]int64{}}
	for _, u := range users {
		r.users[u.ID] = u
	}
	return r
}

func (r *memRepo) InTx(_ context.Context, fn func(tx SettleStore) error) error {
	begin := func() *memTx {
		return &memTx{r: r, users: map[string]User{}, recorded: map[string]UsageRecord{}, keySpent: map[string]int64{}}
	}
	return memInTx(r.retries, begin, func(tx *memTx) error { return fn(tx) }, func(tx *memTx) {
		maps.Copy(r.users, tx.users)
		maps.Copy(r.recorded, tx.recorded)
		maps.Copy(r.keySpent, tx.keySpent)
		r.ledger = append(r.ledger, tx.ledger...)
		r.outbox = append(r.outbox, tx.outbox...)
	})
}

// memInTx runs fn on a new transaction of begin, retries times more than
// once, and commits only the last run: the earlier ones are rolled back
// as after a serialization failure. An error of fn rolls back and ends.
func memInTx[T any](retries int, begin func() T, fn func(T) error, commit func(T)) error {
	for run := 0; ; run++ {
		tx := begin()
		if err := fn(tx); err != nil {
			return err
		}
		if run == retries {
			commit(tx)
			return nil
		}
	}
}

type memTx struct {
	r        *memRepo
	users    map[string]User
	recorded map[string]UsageRecord
	keySpent map[string]int64
	ledger   []LedgerEntry
	outbox   [][]OutboxEvent
}

func (t *memTx) LockUsers(_ context.Context, ids []string) (map[string]*User, error) {
	t.r.locked = append(t.r.locked, slices.Clone(ids))
	out := map[string]*User{}
	for _, id := range ids {
		if u, ok := t.r.users[id]; ok {
			out[id] = &u
		}
	}
	return out, nil
}

func (t *memTx) RecordUsage(_ context.Context, rs []UsageRecord) (map[string]bool, error) {
	inserted := map[string]bool{}
	for _, rec := range rs {
		_, before := t.r.recorded[rec.RequestID]
		if _, now := t.recorded[rec.RequestID]; !before && !now {
			t.recorded[rec.RequestID] = rec
			inserted[rec.RequestID] = true
		}
	}
	return inserted, nil
}

func (t *memTx) Write(_ context.Context, w SettleWrites) (map[string]int64, error) {
	if err := t.r.failWrite; err != nil {
		t.r.failWrite = nil
		return nil, err
	}
	t.r.writes = append(t.r.writes, w)
	for _, a := range w.Accounts {
		t.users[a.U.ID] = *a.U
		t.ledger = append(t.ledger, a.Ledger...)
		if len(a.Events) > 0 {
			t.outbox = append(t.outbox, a.Events)
			a.OutboxRow = fmt.Sprintf("row%d", len(t.r.outbox)+len(t.outbox))
		}
	}
	spent := map[string]int64{}
	for k, d := range w.KeySpend {
		if v, ok := t.r.keySpent[k]; ok {
			t.keySpent[k] = v + d
			spent[k] = v + d
		}
	}
	for _, k := range w.ReadKeys {
		if v, ok := t.r.keySpent[k]; ok {
			spent[k] = v
		}
	}
	return spent, nil
}

// testPrices: gpt-* costs 1 micro-USD per prompt token and 2 per
// completion token; free-* costs nothing; other models have no price.
var testPrices = pricing.NewTable([]pricing.Price{
	{ModelPattern: "gpt-*", InputMicrosPerMTok: 1_000_000, OutputMicrosPerMTok: 2_000_000},
	{ModelPattern: "free-*"},
}, nil, nil, 1)

func testSettlement(r *memRepo) *Settlement {
	return &Settlement{Repo: r, Rules: Rules{QuotaLowPercent: 80, MaxTokensPerRequest: 1_000_000, MaxCostMicrosPerRequest: 50_000},
		Now: func() time.Time { return now }}
}

func testUser(id string, balance int64) User {
	return User{ID: id, Status: StatusActive, BalanceMicros: balance, QuotaLimitTokens: 10_000, PeriodStart: PeriodStart(now), Version: 1}
}

// use is a usage of model gpt-test holding the reservation named for its
// request.
func use(req, user, key string, prompt, completion int64) events.Usage {
	return events.Usage{RequestID: req, UserID: user, KeyID: key, Model: "gpt-test", PromptTokens: prompt,
		CompletionTokens: completion, Status: events.StatusOK, ReservationID: req,
		StartedAt: now.Add(-time.Second), FinishedAt: now}
}

func settleOK(t *testing.T, s *Settlement, us ...events.Usage) SettleResult {
	t.Helper()
	res, err := s.Settle(context.Background(), us, testPrices)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errs) != len(us) {
		t.Fatalf("%d errors for %d usages", len(res.Errs), len(us))
	}
	return res
}

func TestSettleChargesANewUsage(t *testing.T) {
	r := newRepo(testUser("usr_1", 10_000))
	r.keySpent["key_1"] = 5
	res := settleOK(t, testSettlement(r), use("req-1", "usr_1", "key_1", 100, 50))

	if res.Errs[0] != nil || len(res.Recorded) != 1 || res.Recorded[0].CostMicros != 200 {
		t.Fatalf("errs %v, recorded %+v", res.Errs, res.Recorded)
	}
	u := r.users["usr_1"]
	if u.BalanceMicros != 9_800 || u.QuotaUsedTokens != 150 || u.Version != 2 {
		t.Errorf("user after settlement: balance %d, quota used %d, version %d", u.BalanceMicros, u.QuotaUsedTokens, u.Version)
	}
	if len(r.ledger) != 1 || r.ledger[0].Kind != KindUsage || r.ledger[0].AmountMicros != -200 ||
		r.ledger[0].BalanceAfterMicros != 9_800 || r.ledger[0].RequestID != "req-1" {
		t.Errorf("ledger %+v", r.ledger)
	}
	if r.keySpent["key_1"] != 205 {
		t.Errorf("key spend %d, want 205", r.keySpent["key_1"])
	}
	if rec := r.recorded["req-1"]; rec.CostMicros != 200 || rec.UserID != "usr_1" {
		t.Errorf("usage record %+v", rec)
	}
	want := []string{events.TypeUsageRecorded, events.TypeBalanceChanged, events.TypeQuotaUpdated}
	if !equal(types(res.Effects.Events), want) || len(r.outbox) != 1 || !equal(types(r.outbox[0]), want) {
		t.Errorf("events %v, outbox %v; want %v in one row", types(res.Effects.Events), r.outbox, want)
	}
	if !slices.Equal(res.Effects.OutboxRows, []string{"row1"}) {
		t.Errorf("outbox rows %v", res.Effects.OutboxRows)
	}
	if len(res.Effects.Mirrors) != 1 {
		t.Fatalf("mirrors %+v", res.Effects.Mirrors)
	}
	m := res.Effects.Mirrors[0]
	if m.UserID != "usr_1" || m.BalanceMicros != 9_800 || m.QuotaUsedTokens != 150 || m.Version != 2 || !m.Active ||
		m.KeySpentMicros["key_1"] != 205 || !slices.Equal(m.ReleaseIDs, []string{"req-1"}) {
		t.Errorf("mirror %+v", m)
	}
}

// TestSettleDuplicates: a request is charged once, whether it comes twice
// in a batch or again after it was settled; its hold is released each
// time.
func TestSettleDuplicates(t *testing.T) {
	r := newRepo(testUser("usr_1", 10_000))
	r.keySpent["key_1"] = 0
	s := testSettlement(r)
	u := use("req-1", "usr_1", "key_1", 100, 0)

	res := settleOK(t, s, u, u)
	if res.Errs[0] != nil || res.Errs[1] != nil || len(res.Recorded) != 1 || len(r.ledger) != 1 || r.keySpent["key_1"] != 100 {
		t.Fatalf("two copies in one batch: errs %v, %d recorded, ledger %d, key spend %d",
			res.Errs, len(res.Recorded), len(r.ledger), r.keySpent["key_1"])
	}

	res = settleOK(t, s, u)
	if res.Errs[0] != nil || len(res.Recorded) != 0 || len(res.Effects.Events) != 0 || len(res.Effects.OutboxRows) != 0 {
		t.Fatalf("replay: errs %v, recorded %v, events %v", res.Errs, res.Recorded, types(res.Effects.Events))
	}
	if len(r.ledger) != 1 || r.users["usr_1"].BalanceMicros != 9_900 || r.keySpent["key_1"] != 100 {
		t.Errorf("replay changed money: ledger %d, balance %d, key spend %d", len(r.ledger), r.users["usr_1"].BalanceMicros, r.keySpent["key_1"])
	}
	// the replay still writes the mirror, with the key's spend read
	w := r.writes[len(r.writes)-1]
	if len(w.Accounts) != 0 || len(w.KeySpend) != 0 || !slices.Equal(w.ReadKeys, []string{"key_1"}) {
		t.Errorf("replay writes %+v", w)
	}
	if len(res.Effects.Mirrors) != 1 || res.Effects.Mirrors[0].BalanceMicros != 9_900 ||
		res.Effects.Mirrors[0].KeySpentMicros["key_1"] != 100 || !slices.Equal(res.Effects.Mirrors[0].ReleaseIDs, []string{"req-1"}) {
		t.Errorf("replay mirror %+v", res.Effects.Mirrors)
	}
}

// TestSettleRefusals: a usage that cannot be settled carries its error
// and is not recorded; the rest of its batch settles. The hold of a
// refused usage of a known user is still released.
func TestSettleRefusals(t *testing.T) {
	for _, tc := range []struct {
		name     string
		bad      func(u events.Usage) events.Usage
		want     error
		released bool // the bad usage's hold is released
		locked   bool // its user is among those locked
	}{
		{"invalid usage", func(u events.Usage) events.Usage { u.RequestID = ""; return u }, ErrInvalidUsage, false, false},
		{"negative tokens", func(u events.Usage) events.Usage { u.PromptTokens = -1; return u }, ErrInvalidUsage, false, false},
		{"unknown user", func(u events.Usage) events.Usage { u.UserID = "usr_ghost"; return u }, ErrUnknownUser, false, true},
		{"model without a price", func(u events.Usage) events.Usage { u.Model = "mystery"; return u }, ErrNoPrice, true, true},
		{"tokens over the ceiling", func(u events.Usage) events.Usage { u.PromptTokens = 2_000_000; return u }, ErrTokensOverCeiling, true, true},
		{"cost over the ceiling", func(u events.Usage) events.Usage { u.PromptTokens = 60_000; return u }, ErrCostOverCeiling, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRepo(testUser("usr_1", 10_000), testUser("usr_2", 10_000))
			bad := tc.bad(use("req-bad", "usr_2", "", 10, 10))
			res := settleOK(t, testSettlement(r), use("req-ok", "usr_1", "", 10, 10), bad)

			if res.Errs[0] != nil || !errors.Is(res.Errs[1], tc.want) {
				t.Fatalf("errs %v, want [nil %v]", res.Errs, tc.want)
			}
			if len(r.recorded) != 1 || len(res.Recorded) != 1 || res.Recorded[0].RequestID != "req-ok" {
				t.Errorf("recorded %v", res.Recorded)
			}
			if b := r.users["usr_2"].BalanceMicros; b != 10_000 {
				t.Errorf("refused usage moved the balance to %d", b)
			}
			if got := slices.Contains(r.locked[0], bad.UserID); got != tc.locked {
				t.Errorf("user of the bad usage locked: %v, want %v (locked %v)", got, tc.locked, r.locked)
			}
			var released []string
			for _, m := range res.Effects.Mirrors {
				released = append(released, m.ReleaseIDs...)
			}
			want := []string{"req-ok"}
			if tc.released {
				want = append(want, "req-bad")
			}
			if !slices.Equal(released, want) {
				t.Errorf("released %v, want %v", released, want)
			}
		})
	}
}

// TestSettleQuotaVersusBalance: what a usage debits depends on its cost
// and tokens: a priced usage debits the balance (ledger entry) and the
// quota, a free one the quota only, a refused request or one without
// tokens neither; each is recorded and its hold released.
func TestSettleQuotaVersusBalance(t *testing.T) {
	for _, tc := range []struct {
		name       string
		u          events.Usage
		cost       int64
		balance    int64
		quotaUsed  int64
		ledger     int
		keySpend   int64
		wantEvents []string
	}{
		{"priced", use("r", "usr_1", "key_1", 300, 100), 500, 9_500, 400, 1, 500,
			[]string{events.TypeUsageRecorded, events.TypeBalanceChanged, events.TypeQuotaUpdated}},
		{"free model", func() events.Usage { u := use("r", "usr_1", "key_1", 300, 100); u.Model = "free-x"; return u }(),
			0, 10_000, 400, 0, 0, []string{events.TypeUsageRecorded, events.TypeQuotaUpdated}},
		{"refused request", func() events.Usage {
			u := use("r", "usr_1", "key_1", 300, 100)
			u.Status = events.StatusRejected
			return u
		}(),
			0, 10_000, 0, 0, 0, []string{}},
		{"no tokens", use("r", "usr_1", "key_1", 0, 0), 0, 10_000, 0, 0, 0, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRepo(testUser("usr_1", 10_000))
			r.keySpent["key_1"] = 0
			res := settleOK(t, testSettlement(r), tc.u)
			u := r.users["usr_1"]
			if res.Errs[0] != nil || len(res.Recorded) != 1 || res.Recorded[0].CostMicros != tc.cost || len(r.recorded) != 1 {
				t.Fatalf("errs %v, recorded %+v", res.Errs, res.Recorded)
			}
			if u.BalanceMicros != tc.balance || u.QuotaUsedTokens != tc.quotaUsed || len(r.ledger) != tc.ledger {
				t.Errorf("balance %d quota used %d ledger %d; want %d %d %d", u.BalanceMicros, u.QuotaUsedTokens, len(r.ledger),
					tc.balance, tc.quotaUsed, tc.ledger)
			}
			if r.keySpent["key_1"] != tc.keySpend {
				t.Errorf("key spend %d, want %d", r.keySpent["key_1"], tc.keySpend)
			}
			if !equal(types(res.Effects.Events), tc.wantEvents) {
				t.Errorf("events %v, want %v", types(res.Effects.Events), tc.wantEvents)
			}
			if len(res.Effects.Mirrors) != 1 || !slices.Equal(res.Effects.Mirrors[0].ReleaseIDs, []string{"r"}) ||
				res.Effects.Mirrors[0].KeySpentMicros["key_1"] != tc.keySpend {
				t.Errorf("mirror %+v", res.Effects.Mirrors)
			}
		})
	}
}

// TestSettleKeySpend: costs are summed per key; a key charged nothing in
// the batch has its spend read; the mirror carries every key's spend.
func TestSettleKeySpend(t *testing.T) {
	r := newRepo(testUser("usr_1", 10_000))
	r.keySpent = map[string]int64{"key_a": 1, "key_b": 2, "key_c": 3}
	free := use("req-4", "usr_1", "key_c", 10, 0)
	free.Model = "free-x"
	res := settleOK(t, testSettlement(r),
		use("req-1", "usr_1", "key_a", 10, 0), use("req-2", "usr_1", "key_a", 20, 0),
		use("req-3", "usr_1", "key_b", 0, 5), free, use("req-5", "usr_1", "", 7, 0))

	w := r.writes[0]
	if !maps.Equal(w.KeySpend, map[string]int64{"key_a": 30, "key_b": 10}) || !slices.Equal(w.ReadKeys, []string{"key_c"}) {
		t.Errorf("key spend %v, read %v", w.KeySpend, w.ReadKeys)
	}
	if !maps.Equal(r.keySpent, map[string]int64{"key_a": 31, "key_b": 12, "key_c": 3}) {
		t.Errorf("stored key spend %v", r.keySpent)
	}
	if m := res.Effects.Mirrors[0]; !maps.Equal(m.KeySpentMicros, map[string]int64{"key_a": 31, "key_b": 12, "key_c": 3}) {
		t.Errorf("mirror key spend %v", m.KeySpentMicros)
	}
	if b := r.users["usr_1"].BalanceMicros; b != 10_000-30-10-7 {
		t.Errorf("balance %d", b)
	}
}

// TestSettleReleasesHolds: every user of the batch gets one mirror write,
// in the order first seen, releasing a gateway lease's part or a whole
// reservation.
func TestSettleReleasesHolds(t *testing.T) {
	r := newRepo(testUser("usr_1", 10_000), testUser("usr_2", 10_000))
	leased := use("req-lease", "usr_2", "", 10, 0)
	leased.ReservationID, leased.ReservedMicros, leased.ReservedTokens = "lease-1", 900, 4000
	unreserved := use("req-none", "usr_2", "", 10, 0)
	unreserved.ReservationID = ""
	res := settleOK(t, testSettlement(r), leased, use("req-1", "usr_1", "", 10, 0), unreserved, use("req-2", "usr_2", "", 10, 0))

	if len(res.Effects.Mirrors) != 2 {
		t.Fatalf("mirrors %+v", res.Effects.Mirrors)
	}
	m2, m1 := res.Effects.Mirrors[0], res.Effects.Mirrors[1]
	if m2.UserID != "usr_2" || m1.UserID != "usr_1" {
		t.Fatalf("mirror order %s, %s", m2.UserID, m1.UserID)
	}
	wantPart := []admission.PartRelease{{ReservationID: "lease-1", RequestID: "req-lease", Micros: 900, Tokens: 4000}}
	if !slices.Equal(m2.Parts, wantPart) || !slices.Equal(m2.ReleaseIDs, []string{"req-2"}) {
		t.Errorf("usr_2 releases: parts %+v, ids %v", m2.Parts, m2.ReleaseIDs)
	}
	if len(m1.Parts) != 0 || !slices.Equal(m1.ReleaseIDs, []string{"req-1"}) {
		t.Errorf("usr_1 releases: parts %+v, ids %v", m1.Parts, m1.ReleaseIDs)
	}
	if m2.BalanceMicros != 10_000-30 || m2.Version != 2 {
		t.Errorf("usr_2 mirror is not the state after settlement: %+v", m2)
	}
}

// TestSettleEventsFollowThresholds: the events of the batch are those of
// its accounts, in order, alerts included, one outbox row per account.
func TestSettleEventsFollowThresholds(t *testing.T) {
	u1 := testUser("usr_1", 10_000)
	u1.QuotaLimitTokens = 100
	r := newRepo(u1, testUser("usr_2", 10_000))
	res := settleOK(t, testSettlement(r), use("req-1", "usr_1", "", 90, 0), use("req-2", "usr_2", "", 10, 0))

	want := []string{
		events.TypeUsageRecorded, events.TypeBalanceChanged, events.TypeQuotaUpdated, events.TypeQuotaLow,
		events.TypeUsageRecorded, events.TypeBalanceChanged, events.TypeQuotaUpdated,
	}
	if !equal(types(res.Effects.Events), want) {
		t.Errorf("events %v, want %v", types(res.Effects.Events), want)
	}
	if !slices.Equal(res.Effects.OutboxRows, []string{"row1", "row2"}) || len(r.outbox) != 2 {
		t.Errorf("outbox rows %v, stored %d", res.Effects.OutboxRows, len(r.outbox))
	}
	if r.users["usr_1"].LastEventID != res.Effects.Events[3].ID {
		t.Errorf("last event id %q, want the quota.low's", r.users["usr_1"].LastEventID)
	}
}

// TestSettleOutOfRange: a debit that would take a balance out of the int64
// range fails the batch with an overflow refusal (which the consumer
// dead-letters usage by usage) and commits nothing.
func TestSettleOutOfRange(t *testing.T) {
	r := newRepo(testUser("usr_1", math.MinInt64+10), testUser("usr_2", 10_000))
	_, err := testSettlement(r).Settle(context.Background(),
		[]events.Usage{use("req-ok", "usr_2", "", 10, 0), use("req-wrap", "usr_1", "", 11, 0)}, testPrices)
	if !IsOverflow(err) {
		t.Fatalf("err %v, want an overflow refusal", err)
	}
	if len(r.recorded) != 0 || len(r.ledger) != 0 || r.users["usr_2"].BalanceMicros != 10_000 {
		t.Errorf("a refused batch wrote: %d records, %d ledger entries", len(r.recorded), len(r.ledger))
	}
}

// TestSettleTransientFailure: a failed write commits nothing; settling
// the batch again settles it once.
func TestSettleTransientFailure(t *testing.T) {
	r := newRepo(testUser("usr_1", 10_000))
	r.failWrite = errors.New("connection reset")
	s := testSettlement(r)
	u := use("req-1", "usr_1", "", 10, 0)
	if _, err := s.Settle(context.Background(), []events.Usage{u}, testPrices); err == nil || IsOverflow(err) {
		t.Fatalf("err %v, want the transient error", err)
	}
	if len(r.recorded) != 0 || len(r.ledger) != 0 {
		t.Fatal("a failed transaction committed")
	}
	res := settleOK(t, s, u)
	if len(res.Recorded) != 1 || len(r.ledger) != 1 || r.users["usr_1"].BalanceMicros != 9_990 {
		t.Errorf("redelivery: recorded %d, ledger %d, balance %d", len(res.Recorded), len(r.ledger), r.users["usr_1"].BalanceMicros)
	}
}

// TestSettleRetriedTransaction: when the repository runs the transaction
// again (a serialization failure), the result is that of the committed
// run alone.
func TestSettleRetriedTransaction(t *testing.T) {
	r := newRepo(testUser("usr_1", 10_000))
	r.retries = 2
	res := settleOK(t, testSettlement(r), use("req-1", "usr_1", "", 10, 0))
	if len(res.Recorded) != 1 || len(res.Effects.Mirrors) != 1 || len(res.Effects.OutboxRows) != 1 || len(res.Effects.Events) != 3 {
		t.Fatalf("result of three runs: %d recorded, %d mirrors, rows %v, %d events",
			len(res.Recorded), len(res.Effects.Mirrors), res.Effects.OutboxRows, len(res.Effects.Events))
	}
	if len(r.ledger) != 1 || r.users["usr_1"].BalanceMicros != 9_990 || res.Effects.Mirrors[0].BalanceMicros != 9_990 {
		t.Errorf("ledger %d, balance %d, mirror %+v", len(r.ledger), r.users["usr_1"].BalanceMicros, res.Effects.Mirrors[0])
	}
	if res.Effects.Events[0].ID != r.outbox[0][0].ID {
		t.Error("the events returned are not those committed")
	}
}

// TestSettleRecordsMissingTimesAsNow: a usage without start or finish
// time is recorded at the settlement's clock.
func TestSettleRecordsMissingTimesAsNow(t *testing.T) {
	r := newRepo(testUser("usr_1", 10_000))
	u := use("req-1", "usr_1", "", 10, 0)
	u.StartedAt, u.FinishedAt = time.Time{}, time.Time{}
	settleOK(t, testSettlement(r), u)
	if rec := r.recorded["req-1"]; !rec.StartedAt.Equal(now) || !rec.FinishedAt.Equal(now) {
		t.Errorf("recorded times %v, %v; want %v", rec.StartedAt, rec.FinishedAt, now)
	}
}

// TestSettleRollsThePeriod: the first charge of a new month starts from a
// reset quota.
func TestSettleRollsThePeriod(t *testing.T) {
	u := testUser("usr_1", 10_000)
	u.PeriodStart, u.QuotaUsedTokens = PeriodStart(now).AddDate(0, -1, 0), 5_000
	r := newRepo(u)
	settleOK(t, testSettlement(r), use("req-1", "usr_1", "", 10, 0))
	if got := r.users["usr_1"]; got.QuotaUsedTokens != 10 || !got.PeriodStart.Equal(PeriodStart(now)) {
		t.Errorf("quota used %d, period %v", got.QuotaUsedTokens, got.PeriodStart)
	}
}

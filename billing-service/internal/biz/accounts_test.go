package biz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

// acctRepo is an in-memory AccountRepo. Like memRepo, a transaction
// stages its writes on copies; they are committed only when fn returns
// nil.
type acctRepo struct {
	users  map[string]User
	idem   map[string]IdemRecord
	ledger []LedgerEntry
	outbox [][]OutboxEvent
	// retries makes InTx run fn this many times more, rolling back each
	// run but the last (a serialization failure retried).
	retries int
	// stale are ids UsersBefore returns besides those due: users another
	// replica rolled over after the query.
	stale []string
	// saved are the user ids of each SaveAccounts call.
	saved [][]string
}

func newAcctRepo(users ...User) *acctRepo {
	r := &acctRepo{users: map[string]User{}, idem: map[string]IdemRecord{}}
	for _, u := range users {
		r.users[u.ID] = u
	}
	return r
}

func (r *acctRepo) InTx(_ context.Context, fn func(tx AccountStore) error) error {
	begin := func() *acctTx { return &acctTx{r: r, users: map[string]User{}, idem: map[string]IdemRecord{}} }
	return memInTx(r.retries, begin, func(tx *acctTx) error { return fn(tx) }, func(tx *acctTx) {
		maps.Copy(r.users, tx.users)
		maps.Copy(r.idem, tx.idem)
		r.ledger = append(r.ledger, tx.ledger...)
		r.outbox = append(r.outbox, tx.outbox...)
	})
}

type acctTx struct {
	r      *acctRepo
	users  map[string]User
	idem   map[string]IdemRecord
	ledger []LedgerEntry
	outbox [][]OutboxEvent
}

func (t *acctTx) LockUsers(_ context.Context, ids []string) (map[string]*User, error) {
	out := map[string]*User{}
	for _, id := range ids {
		if u, ok := t.r.users[id]; ok {
			out[id] = &u
		}
	}
	return out, nil
}

func (t *acctTx) UsersBefore(_ context.Context, start time.Time, limit int) ([]string, error) {
	var ids []string
	for id, u := range t.r.users {
		if u.PeriodStart.Before(start) || slices.Contains(t.r.stale, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids[:min(limit, len(ids))], nil
}

func (t *acctTx) ClaimIdemKey(_ context.Context, key, hash string) (IdemRecord, bool, error) {
	if rec, ok := t.r.idem[key]; ok {
		return rec, true, nil
	}
	t.idem[key] = IdemRecord{RequestHash: hash}
	return IdemRecord{}, false, nil
}

func (t *acctTx) AnswerIdemKey(_ context.Context, key string, status int, body []byte) error {
	rec, ok := t.idem[key]
	if !ok {
		return fmt.Errorf("key %q not claimed in this transaction", key)
	}
	rec.Status, rec.Body = status, body
	t.idem[key] = rec
	return nil
}

func (t *acctTx) SaveAccounts(_ context.Context, accts []*Account) error {
	var ids []string
	for _, a := range accts {
		ids = append(ids, a.U.ID)
		t.users[a.U.ID] = *a.U
		t.ledger = append(t.ledger, a.Ledger...)
		if len(a.Events) > 0 {
			t.outbox = append(t.outbox, a.Events)
			a.OutboxRow = fmt.Sprintf("row%d", len(t.r.outbox)+len(t.outbox))
		}
	}
	t.r.saved = append(t.r.saved, ids)
	return nil
}

func testAccounts(r *acctRepo) *Accounts {
	return &Accounts{Repo: r, Rules: Rules{QuotaLowPercent: 80}, Now: func() time.Time { return now }}
}

func topup(key, hash string, amount int64) PostRequest {
	return PostRequest{UserID: "usr_1", Kind: KindTopup, AmountMicros: amount, Note: "n", IdemKey: key, RequestHash: hash}
}

// TestPostBooksANewPosting: a key not seen before books the posting and
// stores 201 and the ledger entry under the key, in the transaction that
// changes the account.
func TestPostBooksANewPosting(t *testing.T) {
	r := newAcctRepo(testUser("usr_1", 1_000))
	res, err := testAccounts(r).Post(context.Background(), topup("k1", "h1", 500))
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed || res.Status != 201 {
		t.Fatalf("result %+v", res)
	}
	var entry LedgerEntry
	if err := json.Unmarshal(res.Body, &entry); err != nil {
		t.Fatal(err)
	}
	if len(r.ledger) != 1 || entry.ID != r.ledger[0].ID || entry.AmountMicros != 500 || entry.BalanceAfterMicros != 1_500 ||
		entry.Kind != KindTopup || entry.Note != "n" {
		t.Errorf("body %s, ledger %+v", res.Body, r.ledger)
	}
	if u := r.users["usr_1"]; u.BalanceMicros != 1_500 || u.Version != 2 {
		t.Errorf("user balance %d, version %d", u.BalanceMicros, u.Version)
	}
	if rec := r.idem["k1"]; rec.RequestHash != "h1" || rec.Status != 201 || string(rec.Body) != string(res.Body) {
		t.Errorf("key row %+v", rec)
	}
	if !equal(types(res.Effects.Events), []string{events.TypeBalanceChanged}) || len(r.outbox) != 1 ||
		!slices.Equal(res.Effects.OutboxRows, []string{"row1"}) {
		t.Errorf("events %v, outbox rows %v", types(res.Effects.Events), res.Effects.OutboxRows)
	}
	if len(res.Effects.Mirrors) != 1 || res.Effects.Mirrors[0].BalanceMicros != 1_500 {
		t.Errorf("mirrors %+v", res.Effects.Mirrors)
	}
}

// TestPostIdempotencyKey: a key seen before replays its first answer when
// the request is the same and is refused when it is another; neither
// books anything or has effects.
func TestPostIdempotencyKey(t *testing.T) {
	for _, tc := range []struct {
		name   string
		again  PostRequest
		reason apperr.Reason
	}{
		{"same request is replayed", topup("k1", "h1", 500), ""},
		{"another request is refused", topup("k1", "h2", 700), apperr.ReasonIdemKeyReused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newAcctRepo(testUser("usr_1", 1_000))
			s := testAccounts(r)
			first, err := s.Post(context.Background(), topup("k1", "h1", 500))
			if err != nil {
				t.Fatal(err)
			}
			again, err := s.Post(context.Background(), tc.again)
			if (err == nil) != (tc.reason == "") || err != nil && apperr.ReasonOf(err) != tc.reason {
				t.Fatalf("again: err %v, want reason %q", err, tc.reason)
			}
			if tc.reason == "" && (!again.Replayed || again.Status != 201 || string(again.Body) != string(first.Body) ||
				len(again.Effects.Events) != 0 || len(again.Effects.Mirrors) != 0 || len(again.Effects.OutboxRows) != 0) {
				t.Errorf("replay %+v, first body %s", again, first.Body)
			}
			if len(r.ledger) != 1 || r.users["usr_1"].BalanceMicros != 1_500 || len(r.saved) != 1 {
				t.Errorf("booked again: ledger %d, balance %d, saves %d", len(r.ledger), r.users["usr_1"].BalanceMicros, len(r.saved))
			}
			if rec := r.idem["k1"]; rec.RequestHash != "h1" || string(rec.Body) != string(first.Body) {
				t.Errorf("key row changed: %+v", rec)
			}
		})
	}
}

// TestPostRefusalIsNotRemembered: a refused posting rolls back its key
// with everything else, so the key may be used again.
func TestPostRefusalIsNotRemembered(t *testing.T) {
	for _, tc := range []struct {
		name   string
		req    PostRequest
		reason apperr.Reason
	}{
		{"unknown user", PostRequest{UserID: "usr_ghost", Kind: KindTopup, AmountMicros: 5, IdemKey: "k1", RequestHash: "h0"}, apperr.ReasonUserNotFound},
		{"amount out of range", topup("k1", "h0", 1<<62), apperr.ReasonAmountOutOfRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newAcctRepo(testUser("usr_1", 1_000))
			s := testAccounts(r)
			if _, err := s.Post(context.Background(), tc.req); apperr.ReasonOf(err) != tc.reason {
				t.Fatalf("err %v, want reason %q", err, tc.reason)
			}
			if len(r.idem) != 0 || len(r.ledger) != 0 || r.users["usr_1"].Version != 1 {
				t.Fatalf("refusal wrote: keys %v, ledger %d, version %d", r.idem, len(r.ledger), r.users["usr_1"].Version)
			}
			res, err := s.Post(context.Background(), topup("k1", "h1", 500))
			if err != nil || res.Replayed || res.Status != 201 || len(r.ledger) != 1 {
				t.Errorf("key after refusal: %+v, %v, ledger %d", res, err, len(r.ledger))
			}
		})
	}
}

// TestPostRetriedTransaction: a retried transaction starts from scratch:
// the key is claimed again (not replayed) and the posting booked once.
func TestPostRetriedTransaction(t *testing.T) {
	r := newAcctRepo(testUser("usr_1", 1_000))
	r.retries = 2
	res, err := testAccounts(r).Post(context.Background(), topup("k1", "h1", 500))
	if err != nil || res.Replayed || res.Status != 201 {
		t.Fatalf("result %+v, %v", res, err)
	}
	if len(r.ledger) != 1 || r.users["usr_1"].BalanceMicros != 1_500 || len(res.Effects.Events) != 1 {
		t.Errorf("ledger %d, balance %d, events %d", len(r.ledger), r.users["usr_1"].BalanceMicros, len(res.Effects.Events))
	}
}

// TestWithAccount: fn changes the locked account and the result is
// written; an unknown user or an error of fn writes nothing.
func TestWithAccount(t *testing.T) {
	r := newAcctRepo(testUser("usr_1", 1_000))
	s := testAccounts(r)
	ctx := context.Background()

	if _, err := s.WithAccount(ctx, "usr_ghost", func(*Account) error { return nil }); apperr.ReasonOf(err) != apperr.ReasonUserNotFound {
		t.Fatalf("unknown user: %v", err)
	}
	boom := errors.New("boom")
	_, err := s.WithAccount(ctx, "usr_1", func(a *Account) error {
		a.U.Name = "changed"
		return boom
	})
	if !errors.Is(err, boom) || r.users["usr_1"].Name != "" || len(r.saved) != 0 {
		t.Fatalf("fn error: %v, name %q, saves %v", err, r.users["usr_1"].Name, r.saved)
	}
	a, err := s.WithAccount(ctx, "usr_1", func(a *Account) error {
		_, err := a.SetLimits(0, 10_000, 0, StatusDisabled, "")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if u := r.users["usr_1"]; u.Status != StatusDisabled || u.Version != 2 || a.U.Status != StatusDisabled || !a.Changed {
		t.Errorf("after change: stored %+v, returned %+v", u, a.U)
	}
}

// TestRollPeriods: only users whose period started before this month are
// rolled; a user with quota used gets its quota reset, a new version, a
// quota.updated event and a mirror write; one without is written with the
// new period and nothing to propagate; one rolled by another replica after
// the query is written unchanged.
func TestRollPeriods(t *testing.T) {
	lastMonth := PeriodStart(now).AddDate(0, -1, 0)
	used := testUser("usr_used", 0)
	used.PeriodStart, used.QuotaUsedTokens, used.AlertFlags = lastMonth, 9_000, AlertQuotaLow
	idle := testUser("usr_idle", 0)
	idle.PeriodStart = lastMonth
	current := testUser("usr_current", 0)
	current.QuotaUsedTokens = 500
	rolled := testUser("usr_rolled", 0) // current period, but returned by the query
	rolled.QuotaUsedTokens = 100
	r := newAcctRepo(used, idle, current, rolled)
	r.stale = []string{"usr_rolled"}

	eff, err := testAccounts(r).RollPeriods(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"usr_idle", "usr_rolled", "usr_used"}}; !slices.EqualFunc(r.saved, want, slices.Equal) {
		t.Errorf("saved %v, want %v", r.saved, want)
	}
	if u := r.users["usr_used"]; u.QuotaUsedTokens != 0 || !u.PeriodStart.Equal(PeriodStart(now)) || u.Version != 2 || u.AlertFlags != 0 {
		t.Errorf("used user after roll: %+v", u)
	}
	if u := r.users["usr_idle"]; !u.PeriodStart.Equal(PeriodStart(now)) || u.Version != 1 {
		t.Errorf("idle user after roll: %+v", u)
	}
	if u := r.users["usr_current"]; u.QuotaUsedTokens != 500 || u.Version != 1 {
		t.Errorf("current user changed: %+v", u)
	}
	if u := r.users["usr_rolled"]; u.QuotaUsedTokens != 100 || u.Version != 1 {
		t.Errorf("user rolled elsewhere changed: %+v", u)
	}
	if len(eff.Mirrors) != 1 || eff.Mirrors[0].UserID != "usr_used" || eff.Mirrors[0].QuotaUsedTokens != 0 {
		t.Errorf("mirrors %+v", eff.Mirrors)
	}
	if !equal(types(eff.Events), []string{events.TypeQuotaUpdated}) || !slices.Equal(eff.OutboxRows, []string{"row1"}) {
		t.Errorf("events %v, outbox rows %v", types(eff.Events), eff.OutboxRows)
	}
}

// TestRollPeriodsLimit: one call rolls at most limit users, in id order;
// with none due it writes nothing.
func TestRollPeriodsLimit(t *testing.T) {
	var us []User
	for _, id := range []string{"usr_c", "usr_a", "usr_b"} {
		u := testUser(id, 0)
		u.PeriodStart, u.QuotaUsedTokens = PeriodStart(now).AddDate(0, -2, 0), 1
		us = append(us, u)
	}
	r := newAcctRepo(us...)
	s := testAccounts(r)
	ctx := context.Background()
	for _, want := range [][]string{{"usr_a", "usr_b"}, {"usr_c"}} {
		eff, err := s.RollPeriods(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.saved[len(r.saved)-1]; !slices.Equal(got, want) || len(eff.Mirrors) != len(want) {
			t.Fatalf("saved %v with %d mirrors, want %v", got, len(eff.Mirrors), want)
		}
	}
	eff, err := s.RollPeriods(ctx, 2)
	if err != nil || len(r.saved) != 2 || len(eff.Mirrors)+len(eff.Events) != 0 {
		t.Errorf("nothing due: %+v, %v, saves %v", eff, err, r.saved)
	}
}

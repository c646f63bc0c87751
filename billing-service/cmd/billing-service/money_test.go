package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
)

// gpt-test costs 1 micro-USD per input token and 2 per output token.
const priceIn, priceOut = 1_000_000, 2_000_000

func costOf(prompt, completion int64) int64 { return prompt*priceIn/1e6 + completion*priceOut/1e6 }

// TestReplayedUsageSettlesOnce replays one billing.usage 100 times through
// the stream (sequentially) and another 100 times through the handler from
// several goroutines at once: one usage row, one debit, one set of events.
func TestReplayedUsageSettlesOnce(t *testing.T) {
	h := start(t, nil)
	h.price("gpt-*", priceIn, priceOut)
	userID, keyID, _ := h.newUser(1_000_000, map[string]any{"quota_limit_tokens": 1_000_000})

	seq := usage("req-seq", userID, keyID, 1000, 500)
	for i := 0; i < 100; i++ {
		h.publish(seq, fmt.Sprintf("copy-%d", i))
	}
	h.waitSettled()

	conc := usage("req-conc", userID, keyID, 300, 100)
	d := natsbus.Delivery{Ctx: context.Background(), Env: usageEnvelope(t, conc)}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 13; i++ { // 104 handler calls in all
				if errs := h.app.Handler.Handle(context.Background(), []natsbus.Delivery{d}); errs[0] != nil {
					t.Error(errs[0])
				}
			}
		}()
	}
	wg.Wait()

	for _, tc := range []struct {
		req  string
		cost int64
	}{{"req-seq", costOf(1000, 500)}, {"req-conc", costOf(300, 100)}} {
		if n := h.count(`SELECT count(*) FROM usage_records WHERE request_id = $1`, tc.req); n != 1 {
			t.Errorf("%s: %d usage rows", tc.req, n)
		}
		if n := h.count(`SELECT count(*) FROM ledger_entries WHERE request_id = $1 AND kind = 'usage' AND amount_micros = $2`, tc.req, -tc.cost); n != 1 {
			t.Errorf("%s: %d debits of %d", tc.req, n, tc.cost)
		}
	}
	u := h.user(userID)
	if want := 1_000_000 - costOf(1000, 500) - costOf(300, 100); u.BalanceMicros != want {
		t.Errorf("balance %d, want %d", u.BalanceMicros, want)
	}
	if u.QuotaUsedTokens != 1900 {
		t.Errorf("quota used %d, want 1900", u.QuotaUsedTokens)
	}
	h.eventually("outbox drained", func() bool { return h.count(`SELECT count(*) FROM outbox`) == 0 })
	got := countTypes(h.userEvents(userID))
	want := map[string]int{"usage:req-seq": 1, "usage:req-conc": 1, events.TypeUsageRecorded: 2,
		events.TypeBalanceChanged: 3, events.TypeQuotaUpdated: 2} // 3 = top-up + two debits
	for k, v := range want {
		if got[k] != v {
			t.Errorf("events %s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}

// TestConcurrentReservationsNeverOverdraw admits at most k of 200
// concurrent reservations against a balance covering k, then settles the
// admitted ones at costs above and below the estimate: the ledger matches
// the balance and the balance stays above −(credit + largest request).
func TestConcurrentReservationsNeverOverdraw(t *testing.T) {
	h := start(t, nil)
	h.price("gpt-*", priceIn, priceOut)
	const n, k, estimate, credit = 200, 23, 10_000, 5_000
	userID, keyID, _ := h.newUser(k*estimate, map[string]any{"credit_limit_micros": credit})
	ctx := context.Background()

	var admitted []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmtReq("res", i)
			res, err := h.app.Adm.Reserve(ctx, admission.Reservation{ID: id, UserID: userID, KeyID: keyID, Micros: estimate, Tokens: 1000})
			if err != nil {
				t.Error(err)
				return
			}
			if res.Code == admission.OK {
				mu.Lock()
				admitted = append(admitted, id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// balance + credit covers (k*estimate + credit)/estimate reservations
	maxAdmit := (k*estimate + credit) / estimate
	if len(admitted) > maxAdmit || len(admitted) < k {
		t.Fatalf("admitted %d, want between %d and %d", len(admitted), k, maxAdmit)
	}
	var largest int64
	for i, id := range admitted {
		// actual output varies from 2,000 to 7,000 tokens: 4,000–14,000 micro-USD
		out := int64(2000 + (i*997)%5001)
		largest = max(largest, costOf(0, out))
		h.publish(usage(id, userID, keyID, 0, out), id)
	}
	h.waitSettled()
	u := h.user(userID)
	if floor := -(int64(credit) + largest); u.BalanceMicros < floor {
		t.Errorf("balance %d below -(credit + largest request) = %d", u.BalanceMicros, floor)
	}
	if n := h.count(`SELECT count(*) FROM ledger_entries WHERE user_id = $1 AND kind = 'usage'`, userID); n != int64(len(admitted)) {
		t.Errorf("%d debits for %d settled requests", n, len(admitted))
	}
	st, err := h.app.Adm.Get(ctx, userID)
	if err != nil {
		t.Fatal(err)
	}
	if st.ReservedMicros != 0 || st.BalanceMicros != u.BalanceMicros || st.Version != u.Version {
		t.Errorf("mirror %+v does not match user (balance %d, version %d) with every hold released", st, u.BalanceMicros, u.Version)
	}
}

// TestCrashBetweenCommitAndAck skips the ack of the first delivery, as a
// crash after commit would: the message is redelivered and still debited
// once.
func TestCrashBetweenCommitAndAck(t *testing.T) {
	var deliveries atomic.Int32
	h := start(t, func(_ *conf.Config, a *App) {
		a.BeforeAck = func(d natsbus.Delivery) bool { return deliveries.Add(1) > 1 }
	})
	h.price("gpt-*", priceIn, priceOut)
	userID, keyID, _ := h.newUser(100_000, nil)
	h.publish(usage("req-crash", userID, keyID, 100, 100), "req-crash")
	h.waitSettled()
	if deliveries.Load() < 2 {
		t.Fatalf("message handled %d times; the skipped ack should cause a redelivery", deliveries.Load())
	}
	if n := h.count(`SELECT count(*) FROM ledger_entries WHERE request_id = 'req-crash'`); n != 1 {
		t.Fatalf("%d debits after redelivery, want 1", n)
	}
	if got := h.user(userID).BalanceMicros; got != 100_000-costOf(100, 100) {
		t.Fatalf("balance %d", got)
	}
}

// TestRedisWipeAndRebuild deletes every admission key (this test's
// prefix only: the Redis server is shared), then rebuilds the mirror: no
// money is lost and no overspend is admitted.
func TestRedisWipeAndRebuild(t *testing.T) {
	h := start(t, nil)
	h.price("gpt-*", priceIn, priceOut)
	ctx := context.Background()
	type acct struct{ user, key string }
	var accts []acct
	for i := 0; i < 5; i++ {
		u, k, _ := h.newUser(int64(50_000*(i+1)), map[string]any{"quota_limit_tokens": 100_000})
		accts = append(accts, acct{u, k})
		h.publish(usage(fmtReq("pre-"+u, 0), u, k, 1000, 1000), fmtReq("pre-"+u, 0))
	}
	h.waitSettled()

	keys, err := h.re.Client.Keys(ctx, h.re.Prefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("no admission keys to wipe (%v)", err)
	}
	if err := h.re.Client.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	if res, _ := h.app.Adm.Reserve(ctx, admission.Reservation{ID: "x", UserID: accts[0].user, Micros: 1}); res.Code != admission.Missing {
		t.Fatalf("after wipe: %v, want missing", res.Code)
	}
	// the gateway's path for one user, then the full rebuild
	st, raw := h.do("POST", "/internal/v1/admission/load", testInternal, map[string]string{"user_id": accts[0].user})
	h.must(st, raw, 204, nil)
	if n, err := h.app.Rebuild(ctx, nil); err != nil || n != 5 {
		t.Fatalf("rebuild: %d users, %v", n, err)
	}
	for i, a := range accts {
		u := h.user(a.user)
		want := int64(50_000*(i+1)) - costOf(1000, 1000)
		if u.BalanceMicros != want {
			t.Errorf("user %d balance %d, want %d", i, u.BalanceMicros, want)
		}
		m, err := h.app.Adm.Get(ctx, a.user)
		if err != nil || m.BalanceMicros != u.BalanceMicros || m.QuotaUsedTokens != 2000 || m.Version != u.Version {
			t.Errorf("user %d mirror %+v, want balance %d version %d quota used 2000", i, m, u.BalanceMicros, u.Version)
		}
		over, _ := h.app.Adm.Reserve(ctx, admission.Reservation{ID: "over-" + a.user, UserID: a.user, KeyID: a.key, Micros: u.BalanceMicros + 1})
		fits, _ := h.app.Adm.Reserve(ctx, admission.Reservation{ID: "fits-" + a.user, UserID: a.user, KeyID: a.key, Micros: u.BalanceMicros})
		if over.Code != admission.InsufficientBalance || fits.Code != admission.OK {
			t.Errorf("user %d after rebuild: over %v, fits %v", i, over.Code, fits.Code)
		}
		h.publish(usage("fits-"+a.user, a.user, a.key, 0, 100), "fits-"+a.user)
	}
	h.waitSettled()
	for _, a := range accts {
		if m, _ := h.app.Adm.Get(ctx, a.user); m.ReservedMicros != 0 {
			t.Errorf("hold not released after settlement: %+v", m)
		}
	}
}

// TestUnpricedModelIsNeverFree dead-letters a usage whose model has no
// price (no default configured) instead of recording it at cost 0, and
// bills it at the default price when one is configured.
func TestUnpricedModelIsNeverFree(t *testing.T) {
	for _, tc := range []struct {
		name    string
		def     *conf.Price
		records int64
		balance int64
	}{
		{"no default: dead-lettered", nil, 0, 10_000},
		{"default price charged", &conf.Price{InputMicrosPerMTok: 3_000_000, OutputMicrosPerMTok: 3_000_000}, 1, 10_000 - 600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, func(c *conf.Config, a *App) {
				c.Billing.DefaultPrice = tc.def
				a.Prices = biz.NewPriceBook(a.Store, c.Billing.Pricing())
				a.Handler = newHandlerFor(a)
			})
			userID, keyID, _ := h.newUser(10_000, nil)
			u := usage("req-unpriced", userID, keyID, 100, 100)
			u.Model = "mystery-model"
			h.publish(u, "req-unpriced")
			h.waitSettled()
			if n := h.count(`SELECT count(*) FROM usage_records`); n != tc.records {
				t.Errorf("%d usage records, want %d", n, tc.records)
			}
			if b := h.user(userID).BalanceMicros; b != tc.balance {
				t.Errorf("balance %d, want %d", b, tc.balance)
			}
			if tc.def == nil {
				s, err := h.ne.JS.Stream(context.Background(), h.ne.Names.Stream(events.StreamDead))
				if err != nil {
					t.Fatal(err)
				}
				info, _ := s.Info(context.Background())
				if info.State.Msgs != 1 {
					t.Errorf("%d dead letters, want 1", info.State.Msgs)
				}
			}
		})
	}
}

// TestOutboxSweeperPublishesLeftovers: a change committed without its
// after-commit step (a crash) still has its events published, once, by
// the sweeper.
func TestOutboxSweeperPublishesLeftovers(t *testing.T) {
	h := start(t, nil)
	userID, _, _ := h.newUser(0, nil)
	res, err := h.app.Store.Post(context.Background(), biz.PostRequest{UserID: userID, Kind: biz.KindTopup,
		AmountMicros: 42, IdemKey: "crash-1", RequestHash: "h"}) // committed; Propagate never called
	if err != nil || len(res.Effects.Events) != 1 || len(res.Effects.OutboxRows) != 1 {
		t.Fatalf("post: %+v %v", res.Effects, err)
	}
	h.eventually("sweeper drained the outbox", func() bool { return h.count(`SELECT count(*) FROM outbox`) == 0 })
	var found int
	for _, e := range h.userEvents(userID) {
		if e.ID == res.Effects.Events[0].ID {
			found++
		}
	}
	if found != 1 {
		t.Fatalf("left-over event published %d times, want 1", found)
	}
	if got := h.user(userID).LastEventID; got != res.Effects.Events[0].ID {
		t.Fatalf("last_event_id %s, want %s", got, res.Effects.Events[0].ID)
	}
}

// TestLeaseReleasesOncePerRequest: requests a gateway admitted against its
// lease carry their estimate; settling (and replaying) them takes each
// estimate out of the lease exactly once, in step with the debit.
func TestLeaseReleasesOncePerRequest(t *testing.T) {
	h := start(t, nil)
	h.price("gpt-*", priceIn, priceOut)
	userID, keyID, _ := h.newUser(1_000_000, nil)
	ctx := context.Background()
	lease := admission.Reservation{ID: "lease:gw1:" + keyID, UserID: userID, KeyID: keyID, Micros: 50_000, Tokens: 5_000}
	if res, err := h.app.Adm.Lease(ctx, lease); err != nil || res.Code != admission.OK {
		t.Fatalf("lease: %+v %v", res, err)
	}
	const perRequest = 10_000
	for i := 0; i < 3; i++ {
		u := usage(fmtReq("req-lease", i), userID, keyID, 1000, 500)
		u.ReservationID, u.ReservedMicros, u.ReservedTokens = lease.ID, perRequest, 1_000
		for copy := 0; copy < 3; copy++ { // replays, under other message ids
			h.publish(u, fmt.Sprintf("%s-copy-%d", u.RequestID, copy))
		}
	}
	h.waitSettled()
	st, err := h.app.Adm.Get(ctx, userID)
	if err != nil {
		t.Fatal(err)
	}
	if st.ReservedMicros != 50_000-3*perRequest || st.ReservedTokens != 5_000-3*1_000 {
		t.Fatalf("lease after settling 3 requests (3 times each): reserved %d µ$ / %d tokens", st.ReservedMicros, st.ReservedTokens)
	}
	if want := 1_000_000 - 3*costOf(1000, 500); st.BalanceMicros != want || h.user(userID).BalanceMicros != want {
		t.Fatalf("balance %d (mirror) / %d, want %d", st.BalanceMicros, h.user(userID).BalanceMicros, want)
	}
}

// TestBatchMessagesSettleEachRequestOnce stores usage the way the gateway
// batches it: several requests' envelopes in one message. The same
// requests then come again, framed differently (another batch id, so the
// stream's duplicate window does not catch them), and one envelope of a
// batch is poison: every good request is debited exactly once, the
// poison one is dead-lettered alone, and the ledger still sums to the
// balance.
func TestBatchMessagesSettleEachRequestOnce(t *testing.T) {
	h := start(t, nil)
	h.price("gpt-*", priceIn, priceOut)
	userID, keyID, _ := h.newUser(10_000_000, nil)
	var reqs []events.Usage
	for i := 0; i < 12; i++ {
		reqs = append(reqs, usage(fmt.Sprintf("req-b%02d", i), userID, keyID, int64(100+i), 50))
	}
	poison := usage("req-poison", "usr_nobody", keyID, 10, 10) // an unknown user: a permanent failure
	h.publishBatch(reqs[:8]...)
	h.publishBatch(append([]events.Usage{poison}, reqs[8:]...)...)
	h.publishBatch(reqs[4:10]...) // a replay, framed differently
	h.publish(reqs[11], "single-copy")
	h.waitSettled()

	var want int64 = 10_000_000
	for _, u := range reqs {
		cost := costOf(u.PromptTokens, u.CompletionTokens)
		want -= cost
		if n := h.count(`SELECT count(*) FROM ledger_entries WHERE request_id = $1 AND kind = 'usage' AND amount_micros = $2`, u.RequestID, -cost); n != 1 {
			t.Errorf("%s: %d debits of %d", u.RequestID, n, cost)
		}
	}
	if n := h.count(`SELECT count(*) FROM usage_records WHERE request_id = 'req-poison'`); n != 0 {
		t.Errorf("the poison envelope was recorded %d times", n)
	}
	if got := h.user(userID).BalanceMicros; got != want {
		t.Errorf("balance %d, want %d", got, want)
	}
	h.checkLedger()
	dead := h.deadLetters()
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want the poison envelope alone", len(dead))
	}
	if env, err := events.ParseEnvelope(dead[0]); err != nil || env.ID != "req-poison" {
		t.Fatalf("dead letter %s (%v)", dead[0], err)
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/money"
)

// refused asserts a refusal in billing's error shape with the reason.
func (h *harness) refused(st int, raw []byte, status int, reason apperr.Reason) {
	h.t.Helper()
	var body apperr.Body
	if err := json.Unmarshal(raw, &body); err != nil || st != status || body.Error.Reason != string(reason) || body.Error.Message == "" {
		h.t.Fatalf("got %d %s, want %d {\"error\":{\"reason\":%q,\"message\":...}}", st, raw, status, reason)
	}
}

func (h *harness) topup(userID, kind string, amount any, idem string) (int, []byte) {
	h.t.Helper()
	return h.do("POST", "/api/v1/billing/users/"+userID+"/"+kind, testAdmin, map[string]any{"amount_micros": amount}, "Idempotency-Key", idem)
}

// TestTopupOverflowExploitRefused reproduces the exploit: two top-ups of
// 2^62 micro-USD used to wrap the balance negative. Both are refused with
// 400 AMOUNT_OUT_OF_RANGE (each is above 10^13), nothing is booked, and
// the Idempotency-Key of a refusal is not burnt.
func TestTopupOverflowExploitRefused(t *testing.T) {
	h := start(t, nil)
	userID, _, _ := h.newUser(0, nil)
	for i, tc := range []struct {
		kind   string
		amount any
		status int
		reason apperr.Reason
	}{
		{"topup", int64(1) << 62, 400, apperr.ReasonAmountOutOfRange},
		{"topup", int64(1) << 62, 400, apperr.ReasonAmountOutOfRange},
		{"topup", money.MaxAmount + 1, 400, apperr.ReasonAmountOutOfRange},
		{"topup", int64(math.MaxInt64), 400, apperr.ReasonAmountOutOfRange},
		{"adjust", int64(1) << 62, 400, apperr.ReasonAmountOutOfRange},
		{"adjust", -(int64(1) << 62), 400, apperr.ReasonAmountOutOfRange},
		{"adjust", int64(math.MinInt64), 400, apperr.ReasonAmountOutOfRange},
		{"topup", json.Number("9223372036854775808"), 400, apperr.ReasonMalformedJSON}, // 2^63 does not decode
		{"topup", int64(-5), 400, apperr.ReasonInvalidAmount},
	} {
		st, raw := h.topup(userID, tc.kind, tc.amount, fmt.Sprintf("exploit-%d", i))
		h.refused(st, raw, tc.status, tc.reason)
	}
	if u := h.user(userID); u.BalanceMicros != 0 {
		t.Fatalf("balance %d after refused top-ups, want 0", u.BalanceMicros)
	}
	if n := h.count(`SELECT count(*) FROM ledger_entries`); n != 0 {
		t.Fatalf("%d ledger entries after refused top-ups", n)
	}
	// the key of a refused request books a valid one later
	st, raw := h.topup(userID, "topup", money.MaxAmount, "exploit-0")
	h.must(st, raw, 201, nil)
	if u := h.user(userID); u.BalanceMicros != money.MaxAmount {
		t.Fatalf("balance %d, want %d", u.BalanceMicros, money.MaxAmount)
	}
}

// TestTopupsNearTheCeilingCannotWrap tops a balance up with the largest
// amount until it reaches money.MaxBalance: the next top-up is 409
// BALANCE_OUT_OF_RANGE, the balance never wraps, and debits below
// −MaxBalance are refused the same way.
func TestTopupsNearTheCeilingCannotWrap(t *testing.T) {
	h := start(t, nil)
	userID, _, _ := h.newUser(0, nil)
	steps := money.MaxBalance / money.MaxAmount // 100
	for i := int64(0); i < steps; i++ {
		st, raw := h.topup(userID, "topup", money.MaxAmount, fmt.Sprintf("ceil-%d", i))
		h.must(st, raw, 201, nil)
	}
	if u := h.user(userID); u.BalanceMicros != money.MaxBalance {
		t.Fatalf("balance %d, want %d", u.BalanceMicros, money.MaxBalance)
	}
	for i, amount := range []int64{money.MaxAmount, 1} {
		st, raw := h.topup(userID, "topup", amount, fmt.Sprintf("over-%d", i))
		h.refused(st, raw, 409, apperr.ReasonBalanceOutOfRange)
	}
	st, raw := h.topup(userID, "adjust", int64(1), "over-adjust")
	h.refused(st, raw, 409, apperr.ReasonBalanceOutOfRange)
	if u := h.user(userID); u.BalanceMicros != money.MaxBalance {
		t.Fatalf("balance %d after refusals, want %d", u.BalanceMicros, money.MaxBalance)
	}
	// all the way down to −MaxBalance, and no further
	for i := int64(0); i < 2*steps; i++ {
		st, raw := h.topup(userID, "adjust", -money.MaxAmount, fmt.Sprintf("down-%d", i))
		h.must(st, raw, 201, nil)
	}
	st, raw = h.topup(userID, "adjust", int64(-1), "below-floor")
	h.refused(st, raw, 409, apperr.ReasonBalanceOutOfRange)
	if u := h.user(userID); u.BalanceMicros != -money.MaxBalance {
		t.Fatalf("balance %d, want %d", u.BalanceMicros, -money.MaxBalance)
	}
	// the mirror holds the balance exactly
	m, err := h.app.Adm.Get(context.Background(), userID)
	if err != nil || m.BalanceMicros != -money.MaxBalance {
		t.Fatalf("mirror %+v %v", m, err)
	}
}

// TestLimitsAndPricesBounded: credit limit, low-balance threshold, key
// spend limit and every price field are 0..10^13, the token quota
// 0..10^13; out of range is 400 and nothing is stored.
func TestLimitsAndPricesBounded(t *testing.T) {
	h := start(t, nil)
	over := money.MaxAmount + 1
	for _, tc := range []struct {
		field  string
		value  int64
		reason apperr.Reason
	}{
		{"credit_limit_micros", over, apperr.ReasonAmountOutOfRange},
		{"credit_limit_micros", 1 << 62, apperr.ReasonAmountOutOfRange},
		{"low_balance_threshold_micros", over, apperr.ReasonAmountOutOfRange},
		{"low_balance_threshold_micros", -1, apperr.ReasonInvalidAmount},
		{"quota_limit_tokens", money.MaxTokens + 1, apperr.ReasonAmountOutOfRange},
		{"quota_limit_tokens", math.MaxInt64, apperr.ReasonAmountOutOfRange},
	} {
		st, raw := h.do("POST", "/api/v1/billing/users", testAdmin, map[string]any{"name": "x", tc.field: tc.value})
		h.refused(st, raw, 400, tc.reason)
	}
	userID, keyID, _ := h.newUser(0, map[string]any{"credit_limit_micros": money.MaxAmount, "quota_limit_tokens": money.MaxTokens,
		"low_balance_threshold_micros": money.MaxAmount})
	st, raw := h.do("PATCH", "/api/v1/billing/users/"+userID, testAdmin, map[string]any{"credit_limit_micros": int64(1) << 62})
	h.refused(st, raw, 400, apperr.ReasonAmountOutOfRange)
	if u := h.user(userID); u.CreditLimitMicros != money.MaxAmount {
		t.Fatalf("credit limit %d after a refused PATCH", u.CreditLimitMicros)
	}
	st, raw = h.do("POST", "/api/v1/billing/users/"+userID+"/keys", testAdmin, map[string]any{"name": "k", "spend_limit_micros": over})
	h.refused(st, raw, 400, apperr.ReasonAmountOutOfRange)
	st, raw = h.do("PATCH", "/api/v1/billing/keys/"+keyID, testAdmin, map[string]any{"spend_limit_micros": int64(math.MaxInt64)})
	h.refused(st, raw, 400, apperr.ReasonAmountOutOfRange)
	st, raw = h.do("PATCH", "/api/v1/billing/keys/"+keyID, testAdmin, map[string]any{"spend_limit_micros": money.MaxAmount})
	h.must(st, raw, 200, nil)

	for _, field := range []string{"input_micros_per_mtok", "output_micros_per_mtok", "cached_input_micros_per_mtok", "cache_write_micros_per_mtok"} {
		body := map[string]any{"model_pattern": "m-" + field, field: over}
		st, raw := h.do("POST", "/api/v1/billing/prices", testAdmin, body)
		h.refused(st, raw, 400, apperr.ReasonAmountOutOfRange)
		body[field] = -1
		st, raw = h.do("POST", "/api/v1/billing/prices", testAdmin, body)
		h.refused(st, raw, 400, apperr.ReasonInvalidAmount)
	}
	h.price("ok-*", money.MaxAmount, money.MaxAmount)
	var list struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	st, raw = h.do("GET", "/api/v1/billing/prices", testAdmin, nil)
	h.must(st, raw, 200, &list)
	if len(list.Items) != 1 {
		t.Fatalf("%d prices stored, want the one in range", len(list.Items))
	}
	st, raw = h.do("PUT", "/api/v1/billing/prices/"+list.Items[0].ID, testAdmin, map[string]any{"model_pattern": "ok-*", "output_micros_per_mtok": 1 << 62})
	h.refused(st, raw, 400, apperr.ReasonAmountOutOfRange)
}

// metric reads one series of /metrics.
func (h *harness) metric(series string) float64 {
	h.t.Helper()
	_, raw := h.do("GET", "/metrics", "", nil)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(raw)
	if m == nil {
		h.t.Fatalf("series %s not on /metrics", series)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		h.t.Fatal(err)
	}
	return v
}

// TestAbsurdUsageDeadLettered: an upstream reporting more tokens than one
// request may use (10^7 by default), or a cost above the per-request
// ceiling (10^10 micro-USD), or counts that would overflow, is
// dead-lettered with its reason, counted in billing_usage_rejected_total,
// and not settled; the holds of those requests (a reservation and a
// lease part) are released all the same, and the good usage sharing their
// batch message is settled once.
func TestAbsurdUsageDeadLettered(t *testing.T) {
	h := start(t, nil)
	h.price("gpt-*", priceIn, priceOut)
	h.price("pricey-*", money.MaxAmount, money.MaxAmount)
	const balance = 50_000_000
	userID, keyID, _ := h.newUser(balance, nil)
	ctx := context.Background()

	huge := usage("req-huge", userID, keyID, 20_000_000, 10) // over 10^7 tokens
	wraps := usage("req-wraps", userID, keyID, math.MaxInt64, math.MaxInt64)
	cached := usage("req-cached", userID, keyID, 10, 10)
	cached.CachedTokens = 1 << 62
	pricey := usage("req-pricey", userID, keyID, 0, 2_000) // 2000 × 10^13 / 10^6 = 2·10^10 > 10^10
	pricey.Model = "pricey-model"
	good := usage("req-good", userID, keyID, 1000, 500)

	// holds: the huge and the good one each reserved; the wrapping one was
	// admitted against a lease
	for _, id := range []string{huge.RequestID, good.RequestID, pricey.RequestID, cached.RequestID} {
		if res, err := h.app.Adm.Reserve(ctx, admission.Reservation{ID: id, UserID: userID, KeyID: keyID, Micros: 10_000, Tokens: 1000}); err != nil || res.Code != admission.OK {
			t.Fatalf("reserve %s: %+v %v", id, res, err)
		}
	}
	lease := admission.Reservation{ID: "lease:gw1:" + keyID, UserID: userID, KeyID: keyID, Micros: 40_000, Tokens: 4000}
	if res, err := h.app.Adm.Lease(ctx, lease); err != nil || res.Code != admission.OK {
		t.Fatalf("lease: %+v %v", res, err)
	}
	wraps.ReservationID, wraps.ReservedMicros, wraps.ReservedTokens = lease.ID, 40_000, 4000

	h.publishBatch(good, huge, wraps)
	h.publish(pricey, "pricey")
	h.publish(cached, "cached")
	h.waitSettled()

	if n := h.count(`SELECT count(*) FROM usage_records`); n != 1 {
		t.Errorf("%d usage records, want only req-good", n)
	}
	if got, want := h.user(userID).BalanceMicros, int64(balance)-costOf(1000, 500); got != want {
		t.Errorf("balance %d, want %d (only the good usage debited)", got, want)
	}
	st, err := h.app.Adm.Get(ctx, userID)
	if err != nil || st.ReservedMicros != 0 || st.ReservedTokens != 0 {
		t.Errorf("holds left after settlement: %+v %v", st, err)
	}
	dead := h.deadLetterMsgs()
	reasons := map[string]string{}
	for _, m := range dead {
		env, err := events.ParseEnvelope(m.Data())
		if err != nil {
			t.Fatalf("dead letter %s: %v", m.Data(), err)
		}
		u, err := events.DecodeData[events.Usage](env)
		if err != nil {
			t.Fatal(err)
		}
		reasons[u.RequestID] = m.Headers().Get(events.HeaderDeadReason)
	}
	for id, want := range map[string]string{"req-huge": "token ceiling", "req-wraps": "token ceiling", "req-cached": "token ceiling",
		"req-pricey": "cost ceiling"} {
		if !strings.Contains(reasons[id], want) {
			t.Errorf("dead letter of %s: reason %q, want it to name the %s", id, reasons[id], want)
		}
	}
	if len(dead) != 4 {
		t.Errorf("%d dead letters, want 4: %v", len(dead), reasons)
	}
	if v := h.metric(`billing_usage_rejected_total{reason="tokens"}`); v != 3 {
		t.Errorf("rejected tokens = %v, want 3", v)
	}
	if v := h.metric(`billing_usage_rejected_total{reason="cost"}`); v != 1 {
		t.Errorf("rejected cost = %v, want 1", v)
	}
	// the user can spend again: the whole balance is available
	if res, err := h.app.Adm.Reserve(ctx, admission.Reservation{ID: "after", UserID: userID, Micros: int64(balance) - costOf(1000, 500)}); err != nil || res.Code != admission.OK {
		t.Errorf("reserve the full balance after the rejections: %+v %v", res, err)
	}
}

// TestSettlementOverflowInSQLIsDeadLettered: a sum the Go checks cannot
// see (a key's lifetime spend at the edge of bigint) makes PostgreSQL
// refuse the batch. Settlement must not retry that forever: the batch is
// settled usage by usage, the one that overflows is dead-lettered
// (reason overflow) and the rest are settled once.
func TestSettlementOverflowInSQLIsDeadLettered(t *testing.T) {
	h := start(t, nil)
	h.price("gpt-*", priceIn, priceOut)
	userID, keyID, _ := h.newUser(1_000_000, nil)
	var k2 struct {
		ID string `json:"id"`
	}
	st, raw := h.do("POST", "/api/v1/billing/users/"+userID+"/keys", testAdmin, map[string]any{"name": "k2"})
	h.must(st, raw, 201, &k2)
	if _, err := h.pg.Pool.Exec(context.Background(), `UPDATE api_keys SET spent_micros = $2 WHERE id = $1`, keyID, int64(math.MaxInt64-10)); err != nil {
		t.Fatal(err)
	}
	bad := usage("req-bad", userID, keyID, 1000, 1000) // 3000 µ$ on a key that cannot take it
	ok1 := usage("req-ok1", userID, k2.ID, 100, 100)
	ok2 := usage("req-ok2", userID, k2.ID, 200, 100)
	h.publishBatch(ok1, bad, ok2)
	h.waitSettled()

	var spent int64
	if err := h.pg.Pool.QueryRow(context.Background(), `SELECT spent_micros FROM api_keys WHERE id = $1`, keyID).Scan(&spent); err != nil || spent != math.MaxInt64-10 {
		t.Fatalf("key spend %d (%v): the overflowing debit was booked", spent, err)
	}
	if n := h.count(`SELECT count(*) FROM usage_records WHERE request_id IN ('req-ok1', 'req-ok2')`); n != 2 {
		t.Errorf("%d of the good usages settled, want 2", n)
	}
	if n := h.count(`SELECT count(*) FROM usage_records WHERE request_id = 'req-bad'`); n != 0 {
		t.Errorf("the overflowing usage was recorded")
	}
	if got, want := h.user(userID).BalanceMicros, int64(1_000_000)-costOf(100, 100)-costOf(200, 100); got != want {
		t.Errorf("balance %d, want %d", got, want)
	}
	dead := h.deadLetterMsgs()
	if len(dead) != 1 || !strings.Contains(dead[0].Headers().Get(events.HeaderDeadReason), string(apperr.ReasonAmountOutOfRange)) {
		t.Fatalf("dead letters: %d (%v), want req-bad with AMOUNT_OUT_OF_RANGE", len(dead), headers(dead))
	}
	if v := h.metric(`billing_usage_rejected_total{reason="overflow"}`); v != 1 {
		t.Errorf("rejected overflow = %v, want 1", v)
	}
}

func headers(ms []jetstream.Msg) []nats.Header {
	out := make([]nats.Header, len(ms))
	for i, m := range ms {
		out[i] = m.Headers()
	}
	return out
}

// TestStatsOverflowIs4xx: a day's sum beyond bigint answers 400
// AMOUNT_OUT_OF_RANGE in billing's error shape, not 500.
func TestStatsOverflowIs4xx(t *testing.T) {
	h := start(t, nil)
	userID, _, _ := h.newUser(0, nil)
	for i := 0; i < 2; i++ {
		if _, err := h.pg.Pool.Exec(context.Background(), `INSERT INTO usage_records (request_id, user_id, key_id, model,
			upstream_model, provider_id, api_format, endpoint, usage_source, status, reservation_id, prompt_tokens,
			completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_micros, stream, started_at, finished_at)
			VALUES ($1, $2, '', 'm', 'm', '', 'openai', '/v1/chat/completions', 'upstream', 'ok', '', 1, 1, 0, 0, 0, $3, false, now(), now())`,
			fmt.Sprintf("big-%d", i), userID, int64(math.MaxInt64-1)); err != nil {
			t.Fatal(err)
		}
	}
	st, raw := h.do("GET", "/api/v1/billing/stats/usage", testAdmin, nil)
	h.refused(st, raw, 400, apperr.ReasonAmountOutOfRange)
}

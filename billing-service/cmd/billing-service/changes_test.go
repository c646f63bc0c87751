package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/data"
	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

// TestChangesReachTheGateway: admin changes reach what the gateway reads —
// the Redis mirror (status, key spend, quota period) and the core-NATS
// notifications key.changed and price.changed.
func TestChangesReachTheGateway(t *testing.T) {
	h := start(t, nil)
	ctx := context.Background()
	notes := make(chan *nats.Msg, 16)
	for _, subj := range []string{events.SubjectKeyChanged, events.SubjectPriceChanged} {
		sub, err := h.ne.Conn.ChanSubscribe(h.ne.Names.Subject(subj), notes)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
	}
	if err := h.ne.Conn.Flush(); err != nil {
		t.Fatal(err)
	}
	expect := func(subj string, check func(raw []byte) bool) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case m := <-notes:
				if m.Subject == h.ne.Names.Subject(subj) && check(m.Data) {
					return
				}
			case <-timeout:
				t.Fatalf("no %s notification", subj)
			}
		}
	}

	h.price("gpt-*", priceIn, priceOut)
	expect(events.SubjectPriceChanged, func(raw []byte) bool { return json.Valid(raw) })

	userID, keyID, _ := h.newUser(10_000, map[string]any{"quota_limit_tokens": 10_000})
	expect(events.SubjectKeyChanged, func(raw []byte) bool {
		var kc events.KeyChanged
		return json.Unmarshal(raw, &kc) == nil && kc.KeyID == keyID && kc.UserID == userID
	})

	// Key spend limit: the settled spend is mirrored per key.
	st, raw := h.do("PATCH", "/api/v1/billing/keys/"+keyID, testAdmin, map[string]any{"spend_limit_micros": 1000})
	h.must(st, raw, 200, nil)
	h.publish(usage("spend-1", userID, keyID, 900, 0), "spend-1")
	h.waitSettled()
	res, err := h.app.Adm.Reserve(ctx, admission.Reservation{ID: "k-over", UserID: userID, KeyID: keyID, KeySpendLimitMicros: 1000, Micros: 101})
	if err != nil || res.Code != admission.KeySpendLimit {
		t.Fatalf("reserve over key limit: %v %v", res, err)
	}

	// Disabling the user: mirror refuses, and every key of the user is evicted.
	st, raw = h.do("PATCH", "/api/v1/billing/users/"+userID, testAdmin, map[string]any{"status": "disabled"})
	h.must(st, raw, 200, nil)
	expect(events.SubjectKeyChanged, func(raw []byte) bool {
		var kc events.KeyChanged
		return json.Unmarshal(raw, &kc) == nil && kc.KeyID == "" && kc.UserID == userID
	})
	if res, _ := h.app.Adm.Reserve(ctx, admission.Reservation{ID: "disabled", UserID: userID, Micros: 1}); res.Code != admission.Disabled {
		t.Fatalf("disabled user reserve: %v", res.Code)
	}

	// A new month resets the used quota in PostgreSQL and in the mirror.
	if h.user(userID).QuotaUsedTokens != 900 {
		t.Fatal("quota not used")
	}
	later := data.NewStore(h.pg.Pool, biz.Rules{})
	later.SetClock(func() time.Time { return time.Now().AddDate(0, 1, 0) })
	eff, err := later.RollPeriods(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.app.Pub.Propagate(ctx, eff); err != nil {
		t.Fatal(err)
	}
	if u := h.user(userID); u.QuotaUsedTokens != 0 || !u.PeriodStart.Equal(biz.PeriodStart(time.Now().AddDate(0, 1, 0))) {
		t.Fatalf("after period roll: used %d, period %v", u.QuotaUsedTokens, u.PeriodStart)
	}
	if m, _ := h.app.Adm.Get(ctx, userID); m.QuotaUsedTokens != 0 {
		t.Fatalf("mirror quota used %d after period roll", m.QuotaUsedTokens)
	}
}

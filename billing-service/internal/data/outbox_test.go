package data_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// TestOutboxPendingAndDelete: a committed change's events wait in the
// outbox, in commit order, until deleted; rows younger than minAge are
// left to the publish that follows the commit.
func TestOutboxPendingAndDelete(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.user("usr_a", "", 0)
	var rows []string
	var ids []string
	for i, amount := range []int64{5, 7} {
		res, err := e.store.Post(ctx, biz.PostRequest{UserID: "usr_a", Kind: biz.KindTopup, AmountMicros: amount,
			IdemKey: fmt.Sprint("k", i), RequestHash: "h"})
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, res.Effects.OutboxRows...)
		for _, ev := range res.Effects.Events {
			ids = append(ids, ev.ID)
		}
	}
	if n, err := e.store.OutboxLen(ctx); err != nil || n != 2 {
		t.Fatalf("outbox length %d, %v; want 2", n, err)
	}
	if got, _, err := e.store.PendingOutbox(ctx, time.Hour, 10); err != nil || len(got) != 0 {
		t.Errorf("rows younger than minAge returned: %v, %v", got, err)
	}
	got, evs, err := e.store.PendingOutbox(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var gotIDs []string
	for _, ev := range evs {
		gotIDs = append(gotIDs, ev.ID)
		if ev.UserID != "usr_a" || ev.Type != "balance.changed" || len(ev.Envelope) == 0 {
			t.Errorf("event read back as %+v", ev)
		}
	}
	if !slices.Equal(got, rows) || !slices.Equal(gotIDs, ids) {
		t.Errorf("pending rows %v events %v; want %v %v", got, gotIDs, rows, ids)
	}
	if err := e.store.DeleteOutbox(ctx, rows[:1]); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := e.store.PendingOutbox(ctx, 0, 10); !slices.Equal(got, rows[1:]) {
		t.Errorf("after deleting the first row: %v", got)
	}
}

// TestPostIsIdempotent: a key books once; the same key and request
// replay the first answer, another request under the key is refused.
func TestPostIsIdempotent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.user("usr_a", "", 0)
	r := biz.PostRequest{UserID: "usr_a", Kind: biz.KindTopup, AmountMicros: 100, IdemKey: "idem-1", RequestHash: "h1"}
	first, err := e.store.Post(ctx, r)
	if err != nil || first.Replayed || first.Status != 201 {
		t.Fatalf("first post: %+v, %v", first, err)
	}
	again, err := e.store.Post(ctx, r)
	if err != nil || !again.Replayed || string(again.Body) != string(first.Body) || len(again.Effects.Events) != 0 {
		t.Errorf("replay: %+v, %v", again, err)
	}
	r.RequestHash, r.AmountMicros = "h2", 200
	if _, err := e.store.Post(ctx, r); apperr.ReasonOf(err) != apperr.ReasonIdemKeyReused {
		t.Errorf("key reused for another request: %v", err)
	}
	if u, _ := e.store.GetUser(ctx, "usr_a"); u.BalanceMicros != 100 {
		t.Errorf("balance %d, want 100", u.BalanceMicros)
	}
	if n := e.count(`SELECT count(*) FROM ledger_entries`); n != 1 {
		t.Errorf("%d ledger entries, want 1", n)
	}
}

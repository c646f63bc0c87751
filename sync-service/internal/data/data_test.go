package data

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/keyauth"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"

	"github.com/lurus-switch/lurus-switch/sync-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/sync-service/internal/synctest"
)

// oneKey re-verifies every hash as the same key.
type oneKey struct{ info keyauth.Info }

func (o oneKey) VerifyHash(context.Context, string) (keyauth.Info, error) { return o.info, nil }

var ticketKey = oneKey{keyauth.Info{UserID: "usr_1", KeyID: "key_1", UserActive: true}}

func TestTicketStoreSingleUse(t *testing.T) {
	re := testenv.Redis(t)
	s := NewTicketStore(re.Client, re.Prefix)
	tickets := biz.NewTickets(s, ticketKey, time.Minute)
	ctx := context.Background()
	apiKey := apikey.Generate()
	hash := apikey.Hash("pepper", apiKey)
	token, _, err := tickets.Issue(ctx, ticketKey.info, hash)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := re.Client.Keys(ctx, re.Prefix+"*").Result()
	if len(keys) != 1 || !strings.HasPrefix(keys[0], re.Prefix+"ticket:") || strings.Contains(keys[0], token) {
		t.Fatalf("stored under %v", keys)
	}
	if v := re.Client.Get(ctx, keys[0]).Val(); strings.Contains(v, apiKey) || !strings.Contains(v, hash) {
		t.Fatalf("a ticket holds the key's hash, never the key: %s", v)
	}
	if ttl := re.Client.TTL(ctx, keys[0]).Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("ttl %v", ttl)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tk, err := tickets.Redeem(ctx, token, netip.MustParseAddr("192.0.2.1"))
			if err == nil {
				wins.Add(1)
				if tk.UserID != "usr_1" || tk.KeyID != "key_1" {
					t.Errorf("ticket %+v", tk)
				}
			} else if apperr.ReasonOf(err) != apperr.ReasonInvalidTicket {
				t.Errorf("redeem: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("ticket redeemed %d times", wins.Load())
	}
}

func TestTicketExpires(t *testing.T) {
	re := testenv.Redis(t)
	tickets := biz.NewTickets(NewTicketStore(re.Client, re.Prefix), ticketKey, time.Second)
	token, _, err := tickets.Issue(context.Background(), ticketKey.info, apikey.Hash("pepper", apikey.Generate()))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for re.Client.Exists(context.Background(), NewTicketStore(re.Client, re.Prefix).key(token)).Val() == 1 {
		if time.Now().After(deadline) {
			t.Fatal("ticket never expired")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := tickets.Redeem(context.Background(), token, netip.Addr{}); apperr.ReasonOf(err) != apperr.ReasonInvalidTicket {
		t.Fatalf("expired ticket: %v", err)
	}
}

func TestTicketStoreDown(t *testing.T) {
	re := testenv.Redis(t)
	s := NewTicketStore(re.Client, re.Prefix)
	_ = re.Client.Close()
	if err := s.Put(context.Background(), "tkt_x", biz.Ticket{}, time.Second); apperr.ReasonOf(err) != apperr.ReasonDependencyDown {
		t.Fatalf("put with redis closed: %v", err)
	}
	if _, _, err := s.Take(context.Background(), "tkt_x"); apperr.ReasonOf(err) != apperr.ReasonDependencyDown {
		t.Fatalf("take with redis closed: %v", err)
	}
}

func TestBillingSyncState(t *testing.T) {
	fb := synctest.NewFakeBilling("itok")
	srv := fb.Start()
	defer srv.Close()
	b := NewBilling(srv.URL, "itok", time.Second)
	ctx := context.Background()
	if err := b.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	fb.SetState(internalapi.SyncState{UserID: "usr_1", BalanceMicros: 42, LastEventID: "01ABC"})
	st, err := b.SyncState(ctx, "usr_1")
	if err != nil || st.BalanceMicros != 42 || st.LastEventID != "01ABC" {
		t.Fatalf("state %+v %v", st, err)
	}
	if _, err := b.SyncState(ctx, "usr_none"); apperr.ReasonOf(err) != apperr.ReasonUserNotFound {
		t.Fatalf("unknown user: %v", err)
	}
}

func TestBillingUnexpectedAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, internalapi.RouteSyncState) {
			_, _ = w.Write([]byte("not json"))
			return
		}
		w.WriteHeader(http.StatusBadGateway)
	}))
	b := NewBilling(srv.URL, "itok", time.Second)
	ctx := context.Background()
	if _, err := b.SyncState(ctx, "usr_1"); apperr.ReasonOf(err) != apperr.ReasonDependencyDown {
		t.Fatalf("undecodable answer: %v", err)
	}
	if err := b.Ping(ctx); err == nil {
		t.Fatal("ping of a failing billing succeeded")
	}
	srv.Close()
	if _, err := b.SyncState(ctx, "usr_1"); apperr.ReasonOf(err) != apperr.ReasonDependencyDown {
		t.Fatalf("billing gone: %v", err)
	}
}

package biz

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

type memTickets struct {
	mu sync.Mutex
	m  map[string]Ticket
}

func (s *memTickets) Put(_ context.Context, token string, t Ticket, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[token] = t
	return nil
}

func (s *memTickets) Take(_ context.Context, token string) (Ticket, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[token]
	delete(s.m, token)
	return t, ok, nil
}

func TestTickets(t *testing.T) {
	tk := NewTickets(&memTickets{m: map[string]Ticket{}}, time.Minute)
	ctx := context.Background()
	token, exp, err := tk.Issue(ctx, Identity{UserID: "usr_1", KeyID: "key_1"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, TicketPrefix) || len(token) != len(TicketPrefix)+43 || time.Until(exp) > time.Minute {
		t.Fatalf("ticket %q expires %v", token, exp)
	}
	other, _, _ := tk.Issue(ctx, Identity{UserID: "usr_1"})
	if other == token {
		t.Fatal("two tickets are equal")
	}
	got, err := tk.Redeem(ctx, token)
	if err != nil || got.UserID != "usr_1" || got.KeyID != "key_1" {
		t.Fatalf("redeem: %+v %v", got, err)
	}
	for _, bad := range []string{token, "", "tkt_short", "xyz_" + token[4:], token[:len(token)-1] + "!"} {
		if _, err := tk.Redeem(ctx, bad); apperr.ReasonOf(err) != apperr.ReasonInvalidTicket {
			t.Errorf("Redeem(%q) = %v", bad, err)
		}
	}
}

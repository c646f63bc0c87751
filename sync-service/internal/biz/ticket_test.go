package biz

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/keyauth"
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

// fakeKeys answers VerifyHash from a table; a missing hash is revoked.
type fakeKeys map[string]keyauth.Info

func (f fakeKeys) VerifyHash(_ context.Context, h string) (keyauth.Info, error) {
	info, ok := f[h]
	if !ok {
		return keyauth.Info{}, apperr.New(apperr.ReasonKeyRevoked, "revoked")
	}
	return info, nil
}

var here = netip.MustParseAddr("192.0.2.1")

func TestTickets(t *testing.T) {
	info := keyauth.Info{UserID: "usr_1", KeyID: "key_1", UserActive: true}
	keys := fakeKeys{"h1": info}
	tk := NewTickets(&memTickets{m: map[string]Ticket{}}, keys, time.Minute)
	ctx := context.Background()
	token, exp, err := tk.Issue(ctx, info, "h1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, TicketPrefix) || len(token) != len(TicketPrefix)+43 || time.Until(exp) > time.Minute {
		t.Fatalf("ticket %q expires %v", token, exp)
	}
	other, _, _ := tk.Issue(ctx, info, "h1")
	if other == token {
		t.Fatal("two tickets are equal")
	}
	got, err := tk.Redeem(ctx, token, here)
	if err != nil || got.UserID != "usr_1" || got.KeyID != "key_1" {
		t.Fatalf("redeem: %+v %v", got, err)
	}
	for _, bad := range []string{token, "", "tkt_short", "xyz_" + token[4:], token[:len(token)-1] + "!"} {
		if _, err := tk.Redeem(ctx, bad, here); apperr.ReasonOf(err) != apperr.ReasonInvalidTicket {
			t.Errorf("Redeem(%q) = %v", bad, err)
		}
	}
}

// TestTicketRedeemReverifiesKey: what changed about the key between issue
// and redemption decides, with the reasons the key itself would get.
func TestTicketRedeemReverifiesKey(t *testing.T) {
	issued := keyauth.Info{UserID: "usr_1", KeyID: "key_1", UserActive: true}
	past := time.Now().Add(-time.Second)
	for _, c := range []struct {
		name string
		now  keyauth.Info // what billing says at redemption (zero: revoked)
		hash string       // hash in the ticket
		want apperr.Reason
	}{
		{"unchanged", issued, "h1", ""},
		{"revoked since", keyauth.Info{}, "h1", apperr.ReasonKeyRevoked},
		{"user disabled since", keyauth.Info{UserID: "usr_1", KeyID: "key_1"}, "h1", apperr.ReasonUserDisabled},
		{"expired since", keyauth.Info{UserID: "usr_1", KeyID: "key_1", UserActive: true, ExpiresAt: past}, "h1", apperr.ReasonKeyExpired},
		{"redeemed from outside the allow-list", keyauth.Info{UserID: "usr_1", KeyID: "key_1", UserActive: true,
			AllowedIPs: keyauth.ParseAllowedIPs([]string{"198.51.100.0/24"})}, "h1", apperr.ReasonIPNotAllowed},
		{"hash of another key", keyauth.Info{UserID: "usr_1", KeyID: "key_2", UserActive: true}, "h1", apperr.ReasonInvalidTicket},
		{"ticket without hash", issued, "", apperr.ReasonInvalidTicket},
	} {
		t.Run(c.name, func(t *testing.T) {
			keys := fakeKeys{}
			if c.now.KeyID != "" {
				keys["h1"] = c.now
			}
			tk := NewTickets(&memTickets{m: map[string]Ticket{}}, keys, time.Minute)
			token, _, err := tk.Issue(context.Background(), issued, c.hash)
			if err != nil {
				t.Fatal(err)
			}
			_, err = tk.Redeem(context.Background(), token, here)
			if got := apperr.ReasonOf(err); (c.want == "" && err != nil) || (c.want != "" && got != c.want) {
				t.Fatalf("Redeem = %v, want %q", err, c.want)
			}
		})
	}
}

package biz

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/netip"
	"strings"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/keyauth"
)

// TicketPrefix starts every ticket.
const TicketPrefix = "tkt_"

// ticketBytes is the ticket's entropy: 256 bits.
const ticketBytes = 32

// Ticket is what a ticket stands for: the user and key that asked for
// it, and what redeeming it re-verifies the key by.
type Ticket struct {
	UserID string `json:"user_id"`
	KeyID  string `json:"key_id"`
	// KeyHash is the key's peppered hash (apikey.Hash), never the key: a
	// ticket store that leaks gives no usable credential.
	KeyHash  string    `json:"key_hash"`
	IssuedAt time.Time `json:"issued_at"`
}

// KeyVerifier re-verifies a key by its peppered hash: keyauth.Cache, whose
// entries key.changed evicts, so a key revoked after a ticket was issued
// is refused when the ticket is redeemed.
type KeyVerifier interface {
	VerifyHash(ctx context.Context, hash string) (keyauth.Info, error)
}

// TicketStore keeps tickets until they expire or are taken. Take must be
// atomic (a ticket is redeemed at most once even by concurrent callers) and
// report found=false for an unknown, expired or already taken ticket.
type TicketStore interface {
	Put(ctx context.Context, token string, t Ticket, ttl time.Duration) error
	Take(ctx context.Context, token string) (t Ticket, found bool, err error)
}

// Tickets issues and redeems the short-lived, single-use tickets browsers
// use to open a socket (a browser cannot set headers on a WebSocket).
type Tickets struct {
	store TicketStore
	keys  KeyVerifier
	ttl   time.Duration
	now   func() time.Time
}

// NewTickets returns Tickets that live ttl in store and are redeemed only
// while keys still verifies the key that asked for them.
func NewTickets(store TicketStore, keys KeyVerifier, ttl time.Duration) *Tickets {
	return &Tickets{store: store, keys: keys, ttl: ttl, now: time.Now}
}

// Issue creates a ticket for the verified key info whose peppered hash is
// keyHash, and returns it with its expiry.
func (t *Tickets) Issue(ctx context.Context, info keyauth.Info, keyHash string) (string, time.Time, error) {
	var b [ticketBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", time.Time{}, apperr.Internal(err)
	}
	token := TicketPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	now := t.now()
	tk := Ticket{UserID: info.UserID, KeyID: info.KeyID, KeyHash: keyHash, IssuedAt: now.UTC()}
	if err := t.store.Put(ctx, token, tk, t.ttl); err != nil {
		return "", time.Time{}, err
	}
	return token, now.Add(t.ttl), nil
}

// Redeem takes a ticket for a client at address client. The first call
// re-verifies the key the ticket was issued to and authorizes its use from
// client now, as if the key itself were presented: a key revoked (401
// KEY_REVOKED), a user disabled (403 USER_DISABLED), a key expired (403
// KEY_EXPIRED) since the ticket was issued, or an address outside the
// key's allow-list (403 IP_NOT_ALLOWED), refuses it. Every later call, and
// any call after expiry, fails with INVALID_TICKET.
func (t *Tickets) Redeem(ctx context.Context, token string, client netip.Addr) (keyauth.Info, error) {
	if !wellFormedTicket(token) {
		return keyauth.Info{}, apperr.New(apperr.ReasonInvalidTicket, "invalid ticket")
	}
	tk, found, err := t.store.Take(ctx, token)
	if err != nil {
		return keyauth.Info{}, err
	}
	if !found {
		return keyauth.Info{}, apperr.New(apperr.ReasonInvalidTicket, "ticket unknown, expired or already used")
	}
	if tk.KeyHash == "" {
		// Issued before tickets carried the hash: nothing to re-verify by.
		return keyauth.Info{}, apperr.New(apperr.ReasonInvalidTicket, "ticket cannot be re-verified; ask for a new one")
	}
	info, err := t.keys.VerifyHash(ctx, tk.KeyHash)
	if err != nil {
		return keyauth.Info{}, err
	}
	if info.KeyID != tk.KeyID || info.UserID != tk.UserID {
		return keyauth.Info{}, apperr.New(apperr.ReasonInvalidTicket, "ticket does not match its key")
	}
	if err := info.Authorize(client, t.now()); err != nil {
		return keyauth.Info{}, err
	}
	return info, nil
}

func wellFormedTicket(s string) bool {
	body, ok := strings.CutPrefix(s, TicketPrefix)
	if !ok || len(body) != base64.RawURLEncoding.EncodedLen(ticketBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(body)
	return err == nil
}

// TTL is how long an issued ticket lives.
func (t *Tickets) TTL() time.Duration { return t.ttl }

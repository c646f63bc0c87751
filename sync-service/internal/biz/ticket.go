package biz

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// TicketPrefix starts every ticket.
const TicketPrefix = "tkt_"

// ticketBytes is the ticket's entropy: 256 bits.
const ticketBytes = 32

// Ticket is what a redeemed ticket stands for: the user and key that asked
// for it.
type Ticket struct {
	UserID   string    `json:"user_id"`
	KeyID    string    `json:"key_id"`
	IssuedAt time.Time `json:"issued_at"`
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
	ttl   time.Duration
	now   func() time.Time
}

// NewTickets returns Tickets that live ttl in store.
func NewTickets(store TicketStore, ttl time.Duration) *Tickets {
	return &Tickets{store: store, ttl: ttl, now: time.Now}
}

// Issue creates a ticket for ident and returns it with its expiry.
func (t *Tickets) Issue(ctx context.Context, ident Identity) (string, time.Time, error) {
	var b [ticketBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", time.Time{}, apperr.Internal(err)
	}
	token := TicketPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	now := t.now()
	if err := t.store.Put(ctx, token, Ticket{UserID: ident.UserID, KeyID: ident.KeyID, IssuedAt: now.UTC()}, t.ttl); err != nil {
		return "", time.Time{}, err
	}
	return token, now.Add(t.ttl), nil
}

// Redeem takes a ticket: the first call returns what it stands for, every
// later call (and any call after expiry) fails with INVALID_TICKET.
func (t *Tickets) Redeem(ctx context.Context, token string) (Ticket, error) {
	if !wellFormedTicket(token) {
		return Ticket{}, apperr.New(apperr.ReasonInvalidTicket, "invalid ticket")
	}
	tk, found, err := t.store.Take(ctx, token)
	if err != nil {
		return Ticket{}, err
	}
	if !found {
		return Ticket{}, apperr.New(apperr.ReasonInvalidTicket, "ticket unknown, expired or already used")
	}
	return tk, nil
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

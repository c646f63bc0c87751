package biz

import (
	"context"
	"encoding/json"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// AccountRepo runs an account change in one database transaction.
type AccountRepo interface {
	// InTx runs fn with a store scoped to a new transaction and commits
	// when fn returns nil; an error rolls everything back. fn may be run
	// again (a serialization failure or deadlock is retried), so it must
	// start from scratch each time.
	InTx(ctx context.Context, fn func(tx AccountStore) error) error
}

// AccountStore is what the account changes read and write inside their
// transaction.
type AccountStore interface {
	// LockUsers reads and locks the users with these ids until the
	// transaction ends, in one order for every caller; ids without a user
	// are absent from the map.
	LockUsers(ctx context.Context, ids []string) (map[string]*User, error)
	// UsersBefore returns, in id order and without locking them, the ids
	// of at most limit users whose quota period started before start.
	UsersBefore(ctx context.Context, start time.Time, limit int) ([]string, error)
	// ClaimIdemKey records key with the request's hash and no answer yet.
	// When key is recorded already it waits for the transaction that
	// recorded it to end and returns what it stored, with found set.
	ClaimIdemKey(ctx context.Context, key, hash string) (prior IdemRecord, found bool, err error)
	// AnswerIdemKey stores the answer under a key this transaction
	// claimed.
	AnswerIdemKey(ctx context.Context, key string, status int, body []byte) error
	// SaveAccounts writes the accounts (users, their ledger entries,
	// their events in one outbox row whose id it sets in
	// Account.OutboxRow) in one round trip.
	SaveAccounts(ctx context.Context, accts []*Account) error
}

// IdemRecord is what an idempotency key holds: the hash of the request
// that used it first and that request's answer.
type IdemRecord struct {
	RequestHash string
	Status      int
	Body        []byte
}

// Accounts changes one account at a time outside settlement: an admin's
// change, a top-up or adjustment under an idempotency key, and the monthly
// quota roll-over. Each change is one transaction that locks the users it
// changes and writes them with their ledger entries and events, so a
// crash commits all of it or nothing.
type Accounts struct {
	// Repo runs the transactions.
	Repo AccountRepo
	// Rules are the alert thresholds.
	Rules Rules
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// WithAccount locks the user, runs fn on its Account (its quota period
// rolled over first when due) and writes the result in one transaction.
// A missing user is USER_NOT_FOUND; an error of fn writes nothing. It
// returns the account after commit. fn may run more than once (InTx).
func (s *Accounts) WithAccount(ctx context.Context, userID string, fn func(a *Account) error) (*Account, error) {
	return inTx(ctx, s.Repo.InTx, func(tx AccountStore) (*Account, error) { return s.change(ctx, tx, userID, fn) })
}

func (s *Accounts) change(ctx context.Context, tx AccountStore, userID string, fn func(a *Account) error) (*Account, error) {
	us, err := tx.LockUsers(ctx, []string{userID})
	if err != nil {
		return nil, err
	}
	u, ok := us[userID]
	if !ok {
		return nil, apperr.New(apperr.ReasonUserNotFound, "user not found")
	}
	a, err := NewAccount(u, s.Rules, s.now())
	if err != nil {
		return nil, err
	}
	if err := fn(a); err != nil {
		return nil, err
	}
	return a, tx.SaveAccounts(ctx, []*Account{a})
}

// Post books r (Account.Post) once per idempotency key, in these steps:
//
//  1. claim the key: it is recorded first, so a concurrent request with
//     the same key waits for this transaction and then sees its answer;
//  2. a key recorded before with another request hash is refused
//     (IDEMPOTENCY_KEY_REUSED); with the same hash its answer is replayed
//     (Replayed, no effects: they were propagated the first time);
//  3. otherwise the user's account is changed (WithAccount's rules) and
//     the answer, 201 and the ledger entry, is stored under the key.
//
// A refusal (unknown user, amount out of range) rolls back the key too: it
// is not remembered, and the same key may be used again.
func (s *Accounts) Post(ctx context.Context, r PostRequest) (PostResult, error) {
	return inTx(ctx, s.Repo.InTx, func(tx AccountStore) (PostResult, error) { return s.post(ctx, tx, r) })
}

func (s *Accounts) post(ctx context.Context, tx AccountStore, r PostRequest) (PostResult, error) {
	prior, found, err := tx.ClaimIdemKey(ctx, r.IdemKey, r.RequestHash) // 1
	if err != nil {
		return PostResult{}, err
	}
	if found { // 2
		if prior.RequestHash != r.RequestHash {
			return PostResult{}, apperr.New(apperr.ReasonIdemKeyReused, "Idempotency-Key was already used with a different request")
		}
		return PostResult{Status: prior.Status, Body: prior.Body, Replayed: true}, nil
	}
	var entry LedgerEntry // 3
	acct, err := s.change(ctx, tx, r.UserID, func(a *Account) error {
		var err error
		entry, err = a.Post(r.Kind, r.AmountMicros, r.Note)
		return err
	})
	if err != nil {
		return PostResult{}, err
	}
	res := PostResult{Status: 201, Effects: EffectsOf(acct)} // Created
	if res.Body, err = json.Marshal(entry); err != nil {
		return PostResult{}, err
	}
	return res, tx.AnswerIdemKey(ctx, r.IdemKey, res.Status, res.Body)
}

// RollPeriods resets the quota of at most limit users whose monthly
// period has rolled over (NewAccount does the reset), in one transaction,
// and returns the effects to propagate. A user another replica rolled
// between the query and the lock is written unchanged; users past limit
// are left to the next call.
func (s *Accounts) RollPeriods(ctx context.Context, limit int) (Effects, error) {
	return inTx(ctx, s.Repo.InTx, func(tx AccountStore) (Effects, error) { return s.rollPeriods(ctx, tx, limit) })
}

func (s *Accounts) rollPeriods(ctx context.Context, tx AccountStore, limit int) (Effects, error) {
	now := s.now()
	ids, err := tx.UsersBefore(ctx, PeriodStart(now), limit)
	if err != nil || len(ids) == 0 {
		return Effects{}, err
	}
	us, err := tx.LockUsers(ctx, ids)
	if err != nil {
		return Effects{}, err
	}
	accts := make([]*Account, 0, len(us))
	for _, id := range ids {
		u, ok := us[id]
		if !ok {
			continue
		}
		a, err := NewAccount(u, s.Rules, now)
		if err != nil {
			return Effects{}, err
		}
		accts = append(accts, a)
	}
	if err := tx.SaveAccounts(ctx, accts); err != nil {
		return Effects{}, err
	}
	return EffectsOf(accts...), nil
}

func (s *Accounts) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

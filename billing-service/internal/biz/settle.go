package biz

import (
	"context"
	"slices"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

// SettleRepo runs a settlement in one database transaction.
type SettleRepo interface {
	// InTx runs fn with a store scoped to a new transaction and commits
	// when fn returns nil; an error rolls everything back. fn may be run
	// again (a serialization failure or deadlock is retried), so it must
	// start from scratch each time. A sum PostgreSQL finds out of range
	// is returned as an AMOUNT_OUT_OF_RANGE error (IsOverflow).
	InTx(ctx context.Context, fn func(tx SettleStore) error) error
}

// SettleStore is what settlement reads and writes inside its transaction.
type SettleStore interface {
	// LockUsers reads and locks the users with these ids (duplicates
	// allowed) until the transaction ends, in one order for every caller
	// so that concurrent settlements cannot deadlock. Ids without a user
	// are absent from the map.
	LockUsers(ctx context.Context, ids []string) (map[string]*User, error)
	// RecordUsage inserts a usage record per element, skipping any whose
	// request id is recorded already, and returns the request ids it
	// inserted: the records that are new, which alone are charged.
	RecordUsage(ctx context.Context, rs []UsageRecord) (inserted map[string]bool, err error)
	// Write stores what the settlement changed, in one round trip: the
	// accounts (users, their ledger entries, their events in one outbox
	// row whose id it sets in Account.OutboxRow), then the spend added to
	// keys. It returns the spend of the keys charged and of ReadKeys.
	Write(ctx context.Context, w SettleWrites) (keySpent map[string]int64, err error)
}

// SettleWrites are a settlement's writes after its usages are recorded.
type SettleWrites struct {
	// Accounts are the changed accounts, in the order first charged.
	Accounts []*Account
	// KeySpend is the spend added per key id.
	KeySpend map[string]int64
	// ReadKeys are keys of the batch not in KeySpend whose spend the
	// admission mirror needs (replays, free requests).
	ReadKeys []string
}

// SettleResult is the outcome of settling a batch of usages.
type SettleResult struct {
	// Errs has one entry per usage: nil when it is settled (now or
	// before), else ErrInvalidUsage, ErrUnknownUser, ErrNoPrice,
	// ErrTokensOverCeiling or ErrCostOverCeiling, which a retry cannot fix.
	Errs []error
	// Recorded are the usages inserted by this call, priced.
	Recorded []UsageRecord
	// Effects are the mirror writes (with every reservation of the batch
	// to release, replays included) and the events to publish.
	Effects Effects
}

// Settlement records and bills batches of billing.usage payloads. Each
// batch is settled in one transaction: replaying any usage any number of
// times changes nothing, and an error commits nothing.
type Settlement struct {
	// Repo runs the transaction.
	Repo SettleRepo
	// Rules are the per-request ceilings and alert thresholds.
	Rules Rules
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Settle settles us at the prices of pricer, in these steps:
//
//  1. validate: a malformed usage is refused (ErrInvalidUsage);
//  2. lock the users concerned; a usage of an unknown user is refused;
//  3. price: a usage over the per-request ceilings or without a price is
//     refused, but its hold is still released below;
//  4. deduplicate: a second copy of a request in the batch, and a request
//     recorded before, is not charged again (the usage record's request
//     id is unique);
//  5. debit: each new usage is charged to its account (ledger entry,
//     balance, quota, alerts); a sum out of range fails the whole call
//     (IsOverflow) and nothing is written;
//  6. key spend: the cost is added to the usage's key;
//  7. release holds: every user of the batch, replays and refusals
//     included, gets a mirror write that releases the batch's
//     reservations, so a redelivery after a failed mirror write repairs it;
//  8. events: the accounts' events, stored in the outbox in the same
//     transaction, are returned to publish after commit.
//
// A transient error returns err; the batch may then be settled again.
func (s *Settlement) Settle(ctx context.Context, us []events.Usage, pricer Pricer) (SettleResult, error) {
	return inTx(ctx, s.Repo.InTx, func(tx SettleStore) (SettleResult, error) { return s.settle(ctx, tx, us, pricer) })
}

func (s *Settlement) settle(ctx context.Context, tx SettleStore, us []events.Usage, pricer Pricer) (SettleResult, error) {
	b := &settleBatch{us: us, rules: s.Rules, now: s.now(), res: SettleResult{Errs: make([]error, len(us))}}
	users, err := tx.LockUsers(ctx, b.validate()) // 1, 2
	if err != nil {
		return b.res, err
	}
	b.users = users
	b.price(pricer)                                   // 3, and copies within the batch
	inserted, err := tx.RecordUsage(ctx, b.records()) // 4: requests recorded before
	if err != nil {
		return b.res, err
	}
	if err := b.charge(inserted); err != nil { // 5, 6
		return b.res, err
	}
	spent, err := tx.Write(ctx, SettleWrites{Accounts: b.accounts, KeySpend: b.keySpend, ReadKeys: b.keysToRead()})
	if err != nil {
		return b.res, err
	}
	b.res.Effects.Mirrors = b.releaseHolds(spent) // 7
	ev := EffectsOf(b.accounts...)                // 8
	b.res.Effects.Events, b.res.Effects.OutboxRows = ev.Events, ev.OutboxRows
	return b.res, nil
}

// settleBatch is the state of one attempt at settling a batch.
type settleBatch struct {
	us    []events.Usage
	rules Rules
	now   time.Time
	res   SettleResult
	users map[string]*User // locked
	// cands are the usages to record: the first copy of each request
	// among those priced.
	cands []priced
	// refused are usages of known users that will not be settled
	// (absurd counts or cost, no price): they are dead-lettered, but
	// their holds are released like a settled usage's, or the user would
	// stay blocked by a request that is over.
	refused  []int
	accounts []*Account // charged, in the order first charged
	keySpend map[string]int64
}

// priced is a usage of the batch (by index) and its cost.
type priced struct {
	idx  int
	cost int64
}

// validate refuses malformed usages and returns the users of the others.
func (b *settleBatch) validate() []string {
	ids := make([]string, 0, len(b.us))
	for i, u := range b.us {
		if err := CheckUsage(u); err != nil {
			b.res.Errs[i] = err
			continue
		}
		ids = append(ids, u.UserID)
	}
	return ids
}

// price refuses the usages of unknown users, prices the others and keeps
// the first copy of each request priced as a candidate.
func (b *settleBatch) price(pricer Pricer) {
	seen := make(map[string]bool, len(b.us))
	for i, u := range b.us {
		if b.res.Errs[i] != nil {
			continue
		}
		user, ok := b.users[u.UserID]
		if !ok {
			b.res.Errs[i] = ErrUnknownUser
			continue
		}
		cost, err := b.rules.price(pricer, u, user.Group)
		if err != nil {
			b.res.Errs[i] = err
			b.refused = append(b.refused, i)
			continue
		}
		if !seen[u.RequestID] { // a second copy in one batch is a duplicate
			seen[u.RequestID] = true
			b.cands = append(b.cands, priced{idx: i, cost: cost})
		}
	}
}

// records are the usage records of the candidates; a usage without start
// or finish time is recorded as starting or finishing now.
func (b *settleBatch) records() []UsageRecord {
	rs := make([]UsageRecord, len(b.cands))
	for j, c := range b.cands {
		u := b.us[c.idx]
		u.StartedAt, u.FinishedAt = orNow(u.StartedAt, b.now), orNow(u.FinishedAt, b.now)
		rs[j] = UsageRecord{Usage: u, CostMicros: c.cost}
	}
	return rs
}

func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t
}

// charge debits each inserted candidate from its account (ledger entry,
// balance, quota, alerts) and adds its cost to its key's spend. An error
// (a sum out of range) fails the batch.
func (b *settleBatch) charge(inserted map[string]bool) error {
	accts := map[string]*Account{}
	b.keySpend = map[string]int64{}
	for _, c := range b.cands {
		u := b.us[c.idx]
		if !inserted[u.RequestID] {
			continue
		}
		a := accts[u.UserID]
		if a == nil {
			var err error
			if a, err = NewAccount(b.users[u.UserID], b.rules, b.now); err != nil {
				return err
			}
			accts[u.UserID] = a
			b.accounts = append(b.accounts, a)
		}
		if _, err := a.Charge(u, c.cost); err != nil {
			return err
		}
		if c.cost > 0 && u.KeyID != "" {
			b.keySpend[u.KeyID] += c.cost
		}
		b.res.Recorded = append(b.res.Recorded, UsageRecord{Usage: u, CostMicros: c.cost})
	}
	return nil
}

// keysToRead are the candidates' keys charged nothing in this batch
// (replays, free requests): their spend is read for the mirror.
func (b *settleBatch) keysToRead() []string {
	var out []string
	for _, c := range b.cands {
		if k := b.us[c.idx].KeyID; k != "" && b.keySpend[k] == 0 && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// releaseHolds returns one mirror write per user of the candidates and
// the refused usages, in first-seen order: the user's state after the
// settlement, the spend of its keys in keySpent, and the reservations to
// release (the part of a gateway lease the usage held, or the whole
// reservation).
func (b *settleBatch) releaseHolds(keySpent map[string]int64) []Mirror {
	idxs := make([]int, 0, len(b.cands)+len(b.refused))
	for _, c := range b.cands {
		idxs = append(idxs, c.idx)
	}
	idxs = append(idxs, b.refused...)
	byUser := map[string]int{}
	var out []Mirror
	for _, i := range idxs {
		u := b.us[i]
		j, ok := byUser[u.UserID]
		if !ok {
			m := MirrorOf(b.users[u.UserID])
			m.KeySpentMicros = map[string]int64{}
			j = len(out)
			byUser[u.UserID] = j
			out = append(out, m)
		}
		m := &out[j]
		if v, ok := keySpent[u.KeyID]; ok {
			m.KeySpentMicros[u.KeyID] = v
		}
		switch {
		case u.ReservationID != "" && u.ReservedMicros > 0:
			m.Parts = append(m.Parts, admission.PartRelease{ReservationID: u.ReservationID, RequestID: u.RequestID,
				Micros: u.ReservedMicros, Tokens: u.ReservedTokens})
		case u.ReservationID != "":
			m.ReleaseIDs = append(m.ReleaseIDs, u.ReservationID)
		}
	}
	return out
}

func (s *Settlement) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

// price prices u after holding it to the per-request ceilings.
func (r Rules) price(pricer Pricer, u events.Usage, group string) (int64, error) {
	if err := r.CheckTokens(u); err != nil {
		return 0, err
	}
	cost, err := PriceUsage(pricer, u, group)
	if err != nil {
		return 0, err
	}
	return cost, r.CheckCost(cost)
}

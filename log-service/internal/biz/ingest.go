package biz

import (
	"context"
	"errors"
	"sync"
	"time"
)

// RecordStore is what the Ingester needs from storage.
type RecordStore interface {
	// ExistingIDs returns which of ids already have a row whose created_at
	// lies in [from, to] (whole seconds, both inclusive).
	ExistingIDs(ctx context.Context, from, to time.Time, ids []string) (map[string]bool, error)
	// Insert writes rows as one block: all of them or none.
	Insert(ctx context.Context, rows []Record) error
}

// RollupRepairer is a RecordStore whose rows also feed rollups written
// apart from the rows (request_log's materialized views), which a crash
// between the two can leave short although the rows are stored.
type RollupRepairer interface {
	// RepairRollups adds to the rollups of the time buckets overlapping
	// [from, to] what the stored rows hold and they lack. No insert may be
	// in progress meanwhile.
	RepairRollups(ctx context.Context, from, to time.Time) error
}

// IngestResult says what one Ingest call did.
type IngestResult struct {
	Received   int // records handed in
	Inserted   int // rows written
	Duplicates int // records dropped: repeated in the batch or already stored
}

// Ingester writes batches of records so that each request id is stored
// once, however often a batch is retried or replayed.
//
// A request is identified by (request_id, created_at): a producer never
// changes the created_at of a request it re-sends. One call drops the
// records repeated inside the batch, asks the store which of the rest are
// already there (by id, within the batch's created_at span), and inserts
// the remainder as one block, which is atomic. Check and insert run under
// one lock, so the consumer's workers and the HTTP batch route of this
// process never race each other; across processes, JetStream hands a
// message to one consumer at a time (the consumer keeps it with progress
// acks while its batch runs), which closes the same race for log.write.
//
// Records found already stored mean an earlier attempt committed them and
// then failed, perhaps before the rollups got them (a crash of the store in
// between); with a RollupRepairer store, Ingest then repairs the rollups of
// their time span, under the same lock. A replica inserting into the same
// buckets at that moment may be counted twice in the rollups: a rare,
// bounded over-count in exchange for a certain under-count after a crash.
type Ingester struct {
	store RecordStore
	mu    sync.Mutex

	// AfterInsert, when set, runs after a block was committed and before
	// Ingest returns; its error is returned as if the insert had failed.
	// Tests use it to force the retry of a batch that is already stored.
	AfterInsert func(inserted int) error

	// TimeoutSettle is how long the next duplicate check waits after an
	// insert timed out (0: it does not wait). A timed-out insert is
	// abandoned by the client but its block may still be on its way to the
	// store (in a socket buffer, a slow link) and commit later; a retry
	// whose check ran before that would store the records twice (the fault
	// suite's scenario 11 saw 16 such rows). Waiting narrows that window to
	// blocks later than this; it does not close it (the store has no
	// insert deduplication in ClickHouse 18.16).
	TimeoutSettle time.Duration
	settleUntil   time.Time
}

// NewIngester returns an Ingester writing to store.
func NewIngester(store RecordStore) *Ingester { return &Ingester{store: store} }

// Ingest stores the records not stored yet. The records must be valid
// (Record.Validate). On error nothing of this call may be assumed stored or
// not stored: the caller retries the whole batch, and the retry inserts
// only what is missing.
func (in *Ingester) Ingest(ctx context.Context, recs []Record) (IngestResult, error) {
	res := IngestResult{Received: len(recs)}
	if len(recs) == 0 {
		return res, nil
	}
	uniq := make([]Record, 0, len(recs))
	seen := make(map[string]bool, len(recs))
	ids := make([]string, 0, len(recs))
	from, to := recs[0].CreatedAt, recs[0].CreatedAt
	for _, r := range recs {
		if seen[r.RequestID] {
			continue
		}
		seen[r.RequestID] = true
		uniq = append(uniq, r)
		ids = append(ids, r.RequestID)
		if r.CreatedAt.Before(from) {
			from = r.CreatedAt
		}
		if r.CreatedAt.After(to) {
			to = r.CreatedAt
		}
	}

	in.mu.Lock()
	defer in.mu.Unlock()
	if wait := time.Until(in.settleUntil); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return res, ctx.Err()
		}
	}
	existing, err := in.store.ExistingIDs(ctx, from.Truncate(time.Second), to.Truncate(time.Second), ids)
	if err != nil {
		return res, err
	}
	fresh := uniq
	if len(existing) > 0 {
		fresh = make([]Record, 0, len(uniq))
		for _, r := range uniq {
			if !existing[r.RequestID] {
				fresh = append(fresh, r)
			}
		}
	}
	res.Duplicates = len(recs) - len(fresh)
	if len(fresh) > 0 {
		if err := in.store.Insert(ctx, fresh); err != nil {
			if in.TimeoutSettle > 0 && (ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded)) {
				in.settleUntil = time.Now().Add(in.TimeoutSettle)
			}
			return res, err
		}
	}
	res.Inserted = len(fresh)
	if rr, ok := in.store.(RollupRepairer); ok && len(existing) > 0 {
		if err := rr.RepairRollups(ctx, from.Truncate(time.Second), to.Truncate(time.Second)); err != nil {
			return res, err
		}
	}
	if in.AfterInsert != nil {
		if err := in.AfterInsert(res.Inserted); err != nil {
			return res, err
		}
	}
	return res, nil
}

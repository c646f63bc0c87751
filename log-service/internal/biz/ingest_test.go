package biz

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// fakeStore is a RecordStore in memory, keyed like the real one by
// (request_id, created_at second).
type fakeStore struct {
	rows      []Record
	failCheck error
	failWrite error
	lookups   []time.Time // from, to of each ExistingIDs call
}

func (f *fakeStore) ExistingIDs(_ context.Context, from, to time.Time, ids []string) (map[string]bool, error) {
	if f.failCheck != nil {
		return nil, f.failCheck
	}
	f.lookups = append(f.lookups, from, to)
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	out := map[string]bool{}
	for _, r := range f.rows {
		t := r.CreatedAt.Truncate(time.Second)
		if want[r.RequestID] && !t.Before(from) && !t.After(to) {
			out[r.RequestID] = true
		}
	}
	return out, nil
}

func (f *fakeStore) Insert(_ context.Context, rows []Record) error {
	if f.failWrite != nil {
		return f.failWrite
	}
	f.rows = append(f.rows, rows...)
	return nil
}

func recs(ids ...string) []Record {
	out := make([]Record, len(ids))
	for i, id := range ids {
		out[i] = validRecord()
		out[i].RequestID = id
		out[i].CreatedAt = out[i].CreatedAt.Add(time.Duration(i)*time.Second + 300*time.Millisecond)
	}
	return out
}

func TestIngest(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		stored   []Record
		batch    []Record
		want     IngestResult
		wantRows int
	}{
		{"fresh batch", nil, recs("a", "b", "c"), IngestResult{3, 3, 0}, 3},
		{"repeats inside the batch", nil, append(recs("a", "b"), recs("a")...), IngestResult{3, 2, 1}, 2},
		{"replayed batch", recs("a", "b", "c"), recs("a", "b", "c"), IngestResult{3, 0, 3}, 3},
		{"partly stored", recs("a"), recs("a", "b"), IngestResult{2, 1, 1}, 2},
		{"empty", nil, nil, IngestResult{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &fakeStore{rows: append([]Record(nil), tt.stored...)}
			got, err := NewIngester(st).Ingest(ctx, tt.batch)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || len(st.rows) != tt.wantRows {
				t.Fatalf("got %+v with %d rows, want %+v with %d", got, len(st.rows), tt.want, tt.wantRows)
			}
		})
	}
}

// TestIngestLooksUpTheBatchSpanInWholeSeconds: the stored column has
// second precision, so the lookup bounds are truncated.
func TestIngestLooksUpTheBatchSpanInWholeSeconds(t *testing.T) {
	st := &fakeStore{}
	b := recs("a", "b", "c")
	b[0], b[2] = b[2], b[0]
	if _, err := NewIngester(st).Ingest(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	from, to := st.lookups[0], st.lookups[1]
	if !from.Equal(validRecord().CreatedAt) || !to.Equal(validRecord().CreatedAt.Add(2*time.Second)) {
		t.Fatalf("lookup span %s..%s", from, to)
	}
}

func TestIngestErrors(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	if _, err := NewIngester(&fakeStore{failCheck: boom}).Ingest(ctx, recs("a")); !errors.Is(err, boom) {
		t.Fatalf("check error = %v", err)
	}
	st := &fakeStore{failWrite: boom}
	if _, err := NewIngester(st).Ingest(ctx, recs("a")); !errors.Is(err, boom) || len(st.rows) != 0 {
		t.Fatalf("write error = %v, rows %d", err, len(st.rows))
	}
}

// TestIngestRetryAfterCommit: a failure after the block is committed (the
// AfterInsert hook) makes the caller retry, and the retry writes nothing.
func TestIngestRetryAfterCommit(t *testing.T) {
	st := &fakeStore{}
	in := NewIngester(st)
	fail := true
	in.AfterInsert = func(n int) error {
		if fail {
			fail = false
			return fmt.Errorf("crash after committing %d", n)
		}
		return nil
	}
	batch := recs("a", "b", "c")
	if _, err := in.Ingest(context.Background(), batch); err == nil {
		t.Fatal("first attempt should fail")
	}
	res, err := in.Ingest(context.Background(), batch)
	if err != nil || res.Inserted != 0 || res.Duplicates != 3 || len(st.rows) != 3 {
		t.Fatalf("retry: %+v %v rows=%d", res, err, len(st.rows))
	}
}

// repairingStore is a fakeStore whose rollups can be repaired.
type repairingStore struct {
	fakeStore
	repairs   [][2]time.Time
	failFixes error
}

func (r *repairingStore) RepairRollups(_ context.Context, from, to time.Time) error {
	r.repairs = append(r.repairs, [2]time.Time{from, to})
	return r.failFixes
}

// TestIngestRepairsRollupsOnRetry: a batch whose records are partly
// stored already (an earlier attempt committed, perhaps without its
// rollups) has the rollups of its span repaired; a batch of new records
// does not; a failed repair fails the batch, so it is retried.
func TestIngestRepairsRollupsOnRetry(t *testing.T) {
	ctx := context.Background()
	st := &repairingStore{}
	in := NewIngester(st)
	if _, err := in.Ingest(ctx, recs("a", "b")); err != nil || len(st.repairs) != 0 {
		t.Fatalf("fresh batch: %v, repairs %v", err, st.repairs)
	}
	batch := recs("a", "b", "c")
	res, err := in.Ingest(ctx, batch)
	if err != nil || res.Inserted != 1 || res.Duplicates != 2 {
		t.Fatalf("retry: %+v %v", res, err)
	}
	want := [2]time.Time{batch[0].CreatedAt.Truncate(time.Second), batch[2].CreatedAt.Truncate(time.Second)}
	if len(st.repairs) != 1 || st.repairs[0] != want {
		t.Fatalf("repairs %v, want one of %v", st.repairs, want)
	}
	st.failFixes = errors.New("store gone")
	if _, err := in.Ingest(ctx, batch); !errors.Is(err, st.failFixes) {
		t.Fatalf("failed repair: err = %v", err)
	}
}

// After an insert timed out, the next duplicate check waits TimeoutSettle
// (the abandoned block may still land); a retry whose context ends first
// fails without checking. Any other failure does not make it wait.
func TestIngestWaitsForATimedOutInsertToSettle(t *testing.T) {
	for _, tt := range []struct {
		name      string
		writeErr  error
		wantCheck bool
	}{
		{"timed out", fmt.Errorf("insert: %w", context.DeadlineExceeded), false},
		{"other failure", errors.New("connection refused"), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := &fakeStore{failWrite: tt.writeErr}
			in := NewIngester(st)
			in.TimeoutSettle = time.Hour
			if _, err := in.Ingest(context.Background(), recs("a")); err == nil {
				t.Fatal("the failing insert reported success")
			}
			st.failWrite = nil
			checks := len(st.lookups)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			_, err := in.Ingest(ctx, recs("a"))
			checked := len(st.lookups) > checks
			if checked != tt.wantCheck {
				t.Fatalf("retry checked for stored records: %v, want %v (err %v)", checked, tt.wantCheck, err)
			}
			if !tt.wantCheck && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("retry during the settle: err %v, want the context's deadline", err)
			}
		})
	}
}

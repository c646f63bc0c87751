package publisher

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// withFileSizeLimit lowers this process's file size limit (RLIMIT_FSIZE)
// to n bytes while fn runs: a write past n fails with EFBIG after writing
// what fits, as on a full disk. Go ignores the SIGXFSZ that comes with it.
func withFileSizeLimit(t *testing.T, n uint64, fn func()) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
			t.Fatal(err)
		}
	}()
	fn()
}

// TestAppendOnAFullDiskStoresNothingAndRecovers: an Append that runs out
// of space stores none of its records and leaves no torn line, and once
// there is space again the outbox takes records (it used to keep the
// bufio.Writer's first error forever, losing every later event until a
// restart; scenario 16 of the fault suite).
func TestAppendOnAFullDiskStoresNothingAndRecovers(t *testing.T) {
	dir := t.TempDir()
	ob, err := OpenOutbox(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	if err := ob.Append(rec(1, "billing.usage", 10)); err != nil {
		t.Fatal(err)
	}
	before := ob.Bytes()
	withFileSizeLimit(t, uint64(before)+100, func() {
		err = ob.Append(rec(2, "billing.usage", 50), rec(3, "billing.usage", 500))
	})
	if !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("append past the limit: %v, want EFBIG", err)
	}
	if ob.Bytes() != before {
		t.Errorf("Bytes() = %d after a failed append, want %d", ob.Bytes(), before)
	}
	if fi, err := os.Stat(filepath.Join(dir, "current.jsonl")); err != nil || fi.Size() != before {
		t.Errorf("current.jsonl is %v bytes (%v) after a failed append, want %d", fi.Size(), err, before)
	}
	if err := ob.Append(rec(4, "billing.usage", 10)); err != nil {
		t.Fatalf("append after space came back: %v", err)
	}
	var got []string
	if err := ob.Replay(func(recs []Record) (int, error) {
		for _, r := range recs {
			got = append(got, r.ID)
		}
		return len(recs), nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"req1", "req4"}) {
		t.Errorf("replayed %v, want [req1 req4]", got)
	}
	if ob.Bytes() != 0 {
		t.Errorf("Bytes() = %d after the replay", ob.Bytes())
	}
}

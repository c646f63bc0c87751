package eventid

import (
	"sync"
	"testing"
	"time"
)

// Ids made one after another sort in the order they were made, also when
// many fall in the same millisecond.
func TestNewIsStrictlyIncreasing(t *testing.T) {
	prev := New()
	sameMS := 0
	for range 20000 {
		id := New()
		if id <= prev {
			t.Fatalf("id %s made after %s sorts before or equal to it", id, prev)
		}
		if id[:10] == prev[:10] {
			sameMS++
		}
		prev = id
	}
	if sameMS == 0 {
		t.Fatal("no two ids fell in one millisecond: the test did not test ordering within one")
	}
}

// Concurrent callers get distinct ids, and each caller's own ids increase.
func TestNewConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	seen := sync.Map{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prev := ""
			for range 2000 {
				id := New()
				if id <= prev {
					t.Errorf("id %s after %s", id, prev)
					return
				}
				if _, dup := seen.LoadOrStore(id, true); dup {
					t.Errorf("id %s made twice", id)
					return
				}
				prev = id
			}
		}()
	}
	wg.Wait()
}

func TestTimeRoundTrip(t *testing.T) {
	before := time.Now().Truncate(time.Millisecond)
	at, ok := Time(New())
	if !ok || at.Before(before) || at.After(time.Now()) {
		t.Fatalf("Time(New()) = %v, %v; want a time from now", at, ok)
	}
	if _, ok := Time("not-an-id"); ok {
		t.Fatal("Time accepted a string that is not an id")
	}
}

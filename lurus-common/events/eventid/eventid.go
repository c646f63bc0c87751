// Package eventid makes the ids of user events: ULIDs, which sort by
// creation time, so a client's Last-Event-ID also says from when to replay
// (natsbus.Feed). It is kept out of the events contract so that the
// contract imports nothing but the standard library.
package eventid

import (
	"crypto/rand"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// entropy makes the ids of one process strictly increasing: within one
// millisecond the random part grows instead of being drawn anew, so ids of
// one user's events made in the same millisecond still sort in the order
// they were made. A client skips the events at or before a sync_state's
// last_event_id by comparing ids (doc/client-sync-api.md); with fresh
// random parts two events of one millisecond sorted either way, and the
// fault suite (scenario 12) saw a client apply an event the state held.
var (
	mu      sync.Mutex
	entropy = ulid.Monotonic(rand.Reader, 0)
)

// New returns a new event id, greater than every id New returned before in
// this process (as long as the clock does not step back).
func New() string {
	mu.Lock()
	defer mu.Unlock()
	return ulid.MustNew(ulid.Now(), entropy).String()
}

// Time returns the creation time encoded in an event id made by New; ok is
// false for any other string.
func Time(id string) (t time.Time, ok bool) {
	u, err := ulid.ParseStrict(id)
	if err != nil {
		return time.Time{}, false
	}
	return ulid.Time(u.Time()), true
}

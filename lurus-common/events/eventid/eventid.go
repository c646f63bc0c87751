// Package eventid makes the ids of user events: ULIDs, which sort by
// creation time, so a client's Last-Event-ID also says from when to replay
// (natsbus.Feed). It is kept out of the events contract so that the
// contract imports nothing but the standard library.
package eventid

import (
	"crypto/rand"
	"time"

	"github.com/oklog/ulid/v2"
)

// New returns a new event id.
func New() string {
	return ulid.MustNew(ulid.Now(), rand.Reader).String()
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

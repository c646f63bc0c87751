// Package data implements biz's stores: providers and their encrypted keys
// in PostgreSQL, the snapshot cache and the last probe results in Redis.
// Upstream keys are sealed here with the keyring before they are written
// and opened only for the probe and the gateway snapshot.
package data

import "github.com/oklog/ulid/v2"

// NewID returns a new id with the type prefix ("prv", "pk"): prefix, '_'
// and a ULID, so ids sort by creation time (monotonic within a process).
func NewID(prefix string) string {
	return prefix + "_" + ulid.Make().String()
}

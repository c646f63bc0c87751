// Package requestid is the request id every service logs, echoes and
// propagates (DESIGN.md §3): the client's X-Request-Id when it is a valid
// UUID or ULID, otherwise a new ULID.
package requestid

import (
	"crypto/rand"
	"sync"

	"github.com/oklog/ulid/v2"
)

// Header carries the request id in both directions.
const Header = "X-Request-Id"

// Valid reports whether s is a canonical UUID (8-4-4-4-12 hex) or a ULID.
func Valid(s string) bool {
	switch len(s) {
	case 26:
		_, err := ulid.ParseStrict(s)
		return err == nil
	case 36:
		for i := 0; i < len(s); i++ {
			c := s[i]
			if i == 8 || i == 13 || i == 18 || i == 23 {
				if c != '-' {
					return false
				}
				continue
			}
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
		return true
	}
	return false
}

// entropy is a monotonic ULID source seeded from crypto/rand: ids made in
// the same millisecond increase, and the hot path reads the system's
// randomness once per millisecond instead of once per id.
var entropy = struct {
	sync.Mutex
	src *ulid.MonotonicEntropy
}{src: ulid.Monotonic(rand.Reader, 0)}

// New returns a new ULID request id.
func New() string {
	entropy.Lock()
	defer entropy.Unlock()
	return ulid.MustNew(ulid.Now(), entropy.src).String()
}

// From returns the client's id when Valid, else New().
func From(client string) string {
	if Valid(client) {
		return client
	}
	return New()
}

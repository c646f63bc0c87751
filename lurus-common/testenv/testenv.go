// Package testenv gives each integration test its own slice of the real
// servers: a fresh PostgreSQL database, a Redis key prefix, a NATS namespace
// with its own streams and a ClickHouse database, all removed in t.Cleanup.
// Server addresses come from the environment (LURUS_PG_URL,
// LURUS_REDIS_ADDR, LURUS_NATS_URL, LURUS_CLICKHOUSE_ADDR) with loopback
// defaults. A server that does not answer skips the test, unless
// LURUS_REQUIRE_INTEGRATION=1 (CI), where it fails it.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// Default addresses, matching dev.env.
const (
	DefaultPostgresURL    = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	DefaultRedisAddr      = "127.0.0.1:6379"
	DefaultNATSURL        = "nats://127.0.0.1:4222"
	DefaultClickHouseAddr = "127.0.0.1:9000"
)

// Required reports whether a missing server fails tests instead of skipping
// them.
func Required() bool { return os.Getenv("LURUS_REQUIRE_INTEGRATION") == "1" }

// unavailable skips or fails t because server cannot be reached.
func unavailable(t testing.TB, server string, err error) {
	t.Helper()
	if Required() {
		t.Fatalf("testenv: %s unavailable (LURUS_REQUIRE_INTEGRATION=1): %v", server, err)
	}
	t.Skipf("testenv: %s unavailable, skipping: %v", server, err)
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// UniqueName returns prefix followed by 12 random lowercase hex digits:
// unique per call, usable as a database name or subject token.
func UniqueName(prefix string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

// sanitize keeps a test name usable inside identifiers, for readability of
// leftovers when a process is killed before cleanup.
func sanitize(name string) string {
	name = strings.ToLower(name)
	var b strings.Builder
	for _, c := range name {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
		if b.Len() >= 16 {
			break
		}
	}
	return b.String()
}

// Package apikey is the format of Lurus end-user API keys: generation,
// the keyed hash stored instead of the key, and the display prefix.
package apikey

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strings"
	"sync"
)

// Prefix starts every Lurus API key.
const Prefix = "sk-lurus-"

// RandomLen is the number of base62 characters after Prefix.
const RandomLen = 40

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// DisplayLen is how many leading characters of a key are kept for display.
const DisplayLen = len(Prefix) + 6

// Generate returns a new random key.
func Generate() string {
	var b strings.Builder
	b.Grow(len(Prefix) + RandomLen)
	b.WriteString(Prefix)
	buf := make([]byte, 64)
	for b.Len() < len(Prefix)+RandomLen {
		if _, err := rand.Read(buf); err != nil {
			panic("apikey: crypto/rand: " + err.Error())
		}
		for _, c := range buf {
			// 248 = 4*62: rejection sampling keeps the distribution uniform.
			if c < 248 && b.Len() < len(Prefix)+RandomLen {
				b.WriteByte(alphabet[c%62])
			}
		}
	}
	return b.String()
}

// WellFormed reports whether s has the shape of a Lurus key (prefix and at
// least 32 base62 characters). It lets the gateway refuse garbage without a
// lookup.
func WellFormed(s string) bool {
	rest, ok := strings.CutPrefix(s, Prefix)
	if !ok || len(rest) < 32 || len(rest) > 128 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// Hash returns the hex HMAC-SHA256 of key under pepper: what is stored and
// looked up, never the key itself.
func Hash(pepper, key string) string {
	m := hmac.New(sha256.New, []byte(pepper))
	m.Write([]byte(key))
	return hex.EncodeToString(m.Sum(nil))
}

// Hasher computes Hash under one pepper, reusing its HMAC state: the
// gateway hashes the key of every request.
type Hasher struct{ pool sync.Pool }

// NewHasher returns a Hasher for pepper.
func NewHasher(pepper string) *Hasher {
	h := &Hasher{}
	h.pool.New = func() any { return hmac.New(sha256.New, []byte(pepper)) }
	return h
}

// Hash is Hash(pepper, key).
func (h *Hasher) Hash(key string) string {
	m := h.pool.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(key))
	var sum [sha256.Size]byte
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], m.Sum(sum[:0]))
	h.pool.Put(m)
	return string(out[:])
}

// Display returns the part of a key that may be shown after creation.
func Display(key string) string {
	if len(key) <= DisplayLen {
		return key
	}
	return key[:DisplayLen]
}

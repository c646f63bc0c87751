// Package keyring encrypts upstream API keys at rest with AES-256-GCM. A
// Keyring holds the current key, under which everything new is sealed, and
// any previous keys, which only open what was sealed before a rotation.
// Every sealed value records the id of the key that sealed it.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownKeyID is returned by Open for a value sealed under a key id the
// keyring does not hold.
var ErrUnknownKeyID = errors.New("keyring: unknown key id")

// ErrWrongKey is returned by Open when authentication fails: the key with
// that id is not the one that sealed the value (or the value was altered).
var ErrWrongKey = errors.New("keyring: value does not decrypt under this key (wrong key or altered data)")

// Sealed is an encrypted value as stored: the id of the key, the nonce and
// the ciphertext with its GCM tag.
type Sealed struct {
	KeyID      string
	Nonce      []byte
	Ciphertext []byte
}

// Keyring holds AES-256-GCM keys by id. It is safe for concurrent use.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
}

// Parse builds a keyring from current ("<key id>:<base64 of 32 bytes>",
// LURUS_SECRET_KEY) and previous (a comma-separated list of the same form,
// LURUS_SECRET_KEYS_PREVIOUS; may be empty).
func Parse(current, previous string) (*Keyring, error) {
	kr := &Keyring{aeads: map[string]cipher.AEAD{}}
	id, err := kr.add(current)
	if err != nil {
		return nil, fmt.Errorf("keyring: LURUS_SECRET_KEY: %w", err)
	}
	kr.current = id
	for _, p := range strings.Split(previous, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, err := kr.add(p); err != nil {
			return nil, fmt.Errorf("keyring: LURUS_SECRET_KEYS_PREVIOUS: %w", err)
		}
	}
	return kr, nil
}

func (kr *Keyring) add(spec string) (string, error) {
	id, b64, ok := strings.Cut(strings.TrimSpace(spec), ":")
	if !ok || !validID(id) {
		return "", errors.New(`want "<key id>:<base64 of 32 bytes>" with a key id of 1-64 letters, digits, '.', '_' or '-'`)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(b64); err != nil {
			return "", fmt.Errorf("key id %s: key is not base64", id)
		}
	}
	if len(raw) != 32 {
		return "", fmt.Errorf("key id %s: key is %d bytes, want 32 (AES-256)", id, len(raw))
	}
	if _, dup := kr.aeads[id]; dup {
		return "", fmt.Errorf("key id %s given twice", id)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return "", err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return "", err
	}
	kr.aeads[id] = aead
	return id, nil
}

func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// CurrentID is the id of the key new values are sealed under.
func (kr *Keyring) CurrentID() string { return kr.current }

// Has reports whether the keyring holds the key id.
func (kr *Keyring) Has(id string) bool { _, ok := kr.aeads[id]; return ok }

// Seal encrypts plaintext under the current key with a random nonce. aad
// binds the value to its context (the row it belongs to), so a ciphertext
// moved to another row does not open.
func (kr *Keyring) Seal(plaintext, aad []byte) (Sealed, error) {
	aead := kr.aeads[kr.current]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return Sealed{}, fmt.Errorf("keyring: nonce: %w", err)
	}
	return Sealed{KeyID: kr.current, Nonce: nonce, Ciphertext: aead.Seal(nil, nonce, plaintext, aad)}, nil
}

// Open decrypts s with the key it names.
func (kr *Keyring) Open(s Sealed, aad []byte) ([]byte, error) {
	aead, ok := kr.aeads[s.KeyID]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKeyID, s.KeyID)
	}
	if len(s.Nonce) != aead.NonceSize() {
		return nil, fmt.Errorf("%w: key id %q: bad nonce length", ErrWrongKey, s.KeyID)
	}
	pt, err := aead.Open(nil, s.Nonce, s.Ciphertext, aad)
	if err != nil {
		return nil, fmt.Errorf("%w: key id %q", ErrWrongKey, s.KeyID)
	}
	return pt, nil
}

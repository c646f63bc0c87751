package keyring

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func key(id string, b byte) string {
	return id + ":" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32))
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, cur, prev, wantErr string
	}{
		{"current only", key("k1", 1), "", ""},
		{"with previous", key("k2", 2), key("k1", 1) + ", " + key("k0", 3), ""},
		{"raw base64", "k1:" + base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)), "", ""},
		{"no id", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)), "", "want"},
		{"bad id", key("k 1", 1), "", "want"},
		{"short key", "k1:" + base64.StdEncoding.EncodeToString([]byte("short")), "", "want 32"},
		{"not base64", "k1:!!!", "", "not base64"},
		{"duplicate id", key("k1", 1), key("k1", 2), "given twice"},
		{"bad previous", key("k1", 1), "nope", "LURUS_SECRET_KEYS_PREVIOUS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.cur, tt.prev)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestSealOpenRotation(t *testing.T) {
	old, err := Parse(key("k1", 1), "")
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("sk-proj-abcdefghijklmnop")
	s, err := old.Seal(secret, []byte("pk_1"))
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyID != "k1" || bytes.Contains(s.Ciphertext, secret) {
		t.Fatalf("sealed = %+v", s)
	}
	s2, _ := old.Seal(secret, []byte("pk_1"))
	if bytes.Equal(s.Nonce, s2.Nonce) || bytes.Equal(s.Ciphertext, s2.Ciphertext) {
		t.Fatal("nonce reused")
	}

	rotated, err := Parse(key("k2", 2), key("k1", 1))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rotated.Open(s, []byte("pk_1")); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open with previous key: %q, %v", got, err)
	}
	if _, err := rotated.Open(s, []byte("pk_2")); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("moved ciphertext opened: %v", err)
	}
	if ns, _ := rotated.Seal(secret, nil); ns.KeyID != "k2" {
		t.Fatalf("sealed under %s, want current k2", ns.KeyID)
	}

	wrong, _ := Parse(key("k1", 9), "")
	if _, err := wrong.Open(s, []byte("pk_1")); !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("wrong key: %v", err)
	}
	other, _ := Parse(key("k3", 3), "")
	if _, err := other.Open(s, []byte("pk_1")); !errors.Is(err, ErrUnknownKeyID) {
		t.Fatalf("unknown id: %v", err)
	}
}

package apikey

import (
	"strings"
	"testing"
)

func TestGenerate(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		k := Generate()
		if !WellFormed(k) || len(k) != len(Prefix)+RandomLen {
			t.Fatalf("malformed key %q", k)
		}
		if seen[k] {
			t.Fatal("duplicate key")
		}
		seen[k] = true
	}
}

func TestWellFormed(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"sk-lurus-" + "0123456789abcdefghijABCDEFGHIJKL", true},
		{"sk-lurus-short", false},
		{"sk-other-0123456789abcdefghijABCDEFGHIJKL", false},
		{"sk-lurus-0123456789abcdefghijABCDEFGHIJK!", false},
		{"", false},
	} {
		if got := WellFormed(tt.in); got != tt.want {
			t.Errorf("WellFormed(%q) = %v", tt.in, got)
		}
	}
}

func TestHashIsKeyed(t *testing.T) {
	k := Generate()
	if Hash("p1", k) == Hash("p2", k) || Hash("p1", k) != Hash("p1", k) || len(Hash("p", k)) != 64 {
		t.Fatal("hash not keyed or not stable")
	}
	if d := Display(k); len(d) != DisplayLen || d[:len(Prefix)] != Prefix {
		t.Fatalf("display %q", d)
	}
}

func TestHasherEqualsHash(t *testing.T) {
	h := NewHasher("pepper-a")
	for _, k := range []string{"", "sk-lurus-abc", "sk-lurus-" + strings.Repeat("z", 200)} {
		for i := 0; i < 3; i++ { // reused state must not leak between keys
			if got, want := h.Hash(k), Hash("pepper-a", k); got != want {
				t.Fatalf("Hasher.Hash(%q) = %s, want %s", k, got, want)
			}
		}
	}
	if NewHasher("pepper-b").Hash("sk-lurus-abc") == h.Hash("sk-lurus-abc") {
		t.Fatal("the pepper is ignored")
	}
}

package data

import "testing"

func TestTokenizerOffline(t *testing.T) {
	tk := NewTokenizer()
	if err := tk.Warm(); err != nil {
		t.Fatalf("offline BPE did not load: %v", err)
	}
	// cl100k_base: "hello world" is two tokens.
	if n := tk.Count([]byte("hello world")); n != 2 {
		t.Fatalf("Count = %d, want 2", n)
	}
	if n := tk.Count(nil); n != 0 {
		t.Fatalf("Count(nil) = %d", n)
	}
}

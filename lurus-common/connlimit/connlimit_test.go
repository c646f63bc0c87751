package connlimit

import "testing"

func TestLimiter(t *testing.T) {
	l := New(2)
	r1, ok1 := l.Acquire("u")
	_, ok2 := l.Acquire("u")
	_, ok3 := l.Acquire("u")
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("acquires = %v %v %v, want true true false", ok1, ok2, ok3)
	}
	if _, ok := l.Acquire("v"); !ok {
		t.Fatal("another key refused")
	}
	r1()
	r1() // twice gives back one slot only
	if l.Open("u") != 1 {
		t.Fatalf("open = %d, want 1", l.Open("u"))
	}
	if _, ok := l.Acquire("u"); !ok {
		t.Fatal("a released slot was not reusable")
	}
	if _, ok := l.Acquire("u"); ok {
		t.Fatal("double release freed two slots")
	}
}

func TestUnlimitedAndNil(t *testing.T) {
	for _, l := range []*Limiter{New(0), nil} {
		for i := 0; i < 100; i++ {
			if _, ok := l.Acquire("u"); !ok {
				t.Fatal("refused without a limit")
			}
		}
	}
	l := New(1)
	r, _ := l.Acquire("u")
	r()
	if len(l.open) != 0 {
		t.Error("a key with no connection keeps an entry")
	}
}

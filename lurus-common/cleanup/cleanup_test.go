package cleanup

import (
	"errors"
	"slices"
	"testing"
)

func TestStackClosesInReverseOnce(t *testing.T) {
	var s Stack
	var got []int
	for i := range 3 {
		s.Push(func() { got = append(got, i) })
	}
	s.Close()
	s.Close()
	if !slices.Equal(got, []int{2, 1, 0}) {
		t.Fatalf("closed %v, want [2 1 0] once", got)
	}
}

func TestFail(t *testing.T) {
	var s Stack
	closed := false
	s.Push(func() { closed = true })
	want := errors.New("boom")
	app, fn, err := Fail[struct{}](&s, want)
	if app != nil || fn != nil || err != want || !closed {
		t.Fatalf("Fail = %v %v %v, closed %v", app, fn != nil, err, closed)
	}
}

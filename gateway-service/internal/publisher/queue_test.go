package publisher

import (
	"testing"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
)

func woken(q *queue) bool {
	select {
	case <-q.wake:
		return true
	default:
		return false
	}
}

func TestQueueWakesOncePerRound(t *testing.T) {
	q := newQueue(300)
	for i := 0; i < roundMax+10; i++ {
		if _, ok := q.push(&biz.Outcome{}); !ok {
			t.Fatalf("push %d refused below capacity", i)
		}
		switch i {
		case 0: // a round starts
			if !woken(q) {
				t.Fatal("the first outcome did not wake the publisher")
			}
		case roundMax - 1: // the round is full
			if !woken(q) {
				t.Fatal("a full round did not wake the publisher")
			}
		default:
			if woken(q) {
				t.Fatalf("outcome %d woke the publisher again", i)
			}
		}
	}
	got := q.take(nil, roundMax)
	if len(got) != roundMax || got[0].seq != 1 || got[roundMax-1].seq != roundMax || q.len() != 10 {
		t.Fatalf("took %d (seq %d..%d), %d left", len(got), got[0].seq, got[len(got)-1].seq, q.len())
	}
	if q.take(nil, 0)[0].seq != roundMax+1 {
		t.Fatal("the rest is not in order")
	}
	for i := 0; i < 300; i++ {
		q.push(&biz.Outcome{})
	}
	if e, ok := q.push(&biz.Outcome{}); ok || e.seq == 0 {
		t.Fatal("a full queue took one more outcome")
	}
	if rest := q.close(); len(rest) != 300 {
		t.Fatalf("close returned %d", len(rest))
	}
	if _, ok := q.push(&biz.Outcome{}); ok {
		t.Fatal("a closed queue took an outcome")
	}
}

package biz

import (
	"testing"
	"time"
)

// A request admitted but never sent leaves the breaker as it was: a
// half-open probe that was not sent does not close it, and in the closed
// state it does not clear a run of failures.
func TestBreakerCancelCountsNothing(t *testing.T) {
	now := time.Unix(0, 0)
	set := NewBreakers(BreakerConfig{ConsecutiveFailures: 2, Cooldown: time.Second, Window: time.Minute,
		Now: func() time.Time { return now }})

	b := set.Get("p", "k")
	b.Record(false)
	if !b.Allow() {
		t.Fatal("closed breaker refused")
	}
	b.Cancel()
	b.Record(false) // the second failure in a row: the cancelled request did not break the run
	if b.State() != BreakerOpen {
		t.Fatalf("state %v after two failures around a cancelled request, want open", b.State())
	}

	now = now.Add(2 * time.Second)
	if !b.Allow() || b.State() != BreakerHalfOpen {
		t.Fatalf("after the cooldown: state %v, want a half-open probe", b.State())
	}
	b.Cancel()
	if b.State() != BreakerHalfOpen {
		t.Fatalf("an unsent probe moved the breaker to %v", b.State())
	}
	if !b.Allow() {
		t.Fatal("the probe slot of an unsent probe was not given back")
	}
	if b.Allow() {
		t.Fatal("half-open admitted two probes")
	}
	b.Record(false)
	if b.State() != BreakerOpen {
		t.Fatalf("a failed probe left the breaker %v", b.State())
	}
}

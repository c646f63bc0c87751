package service

import (
	"context"
	"errors"
	"testing"
)

// Shutdown's wait lasts until the requests in flight leave, and a request
// arriving once it has begun is turned away instead of slipping past it.
func TestDrain(t *testing.T) {
	var d drain
	if !d.enter() || !d.enter() {
		t.Fatal("a request was refused before shutdown")
	}
	done := make(chan error, 1)
	go func() { done <- d.wait(context.Background()) }()
	// wait has begun once a new request is refused.
	for d.enter() {
		d.leave()
	}
	d.leave()
	select {
	case err := <-done:
		t.Fatalf("wait returned (%v) with a request still in flight", err)
	default:
	}
	d.leave()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d.enter() {
		t.Fatal("a request was admitted after shutdown")
	}
	if err := d.wait(context.Background()); err != nil {
		t.Fatalf("a second wait: %v", err)
	}
}

func TestDrainIdleAndCancelled(t *testing.T) {
	var idle drain
	if err := idle.wait(context.Background()); err != nil {
		t.Fatalf("nothing in flight: %v", err)
	}
	var busy drain
	busy.enter()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := busy.wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait with a request stuck: %v, want context.Canceled", err)
	}
}

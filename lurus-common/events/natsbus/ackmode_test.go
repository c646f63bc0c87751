package natsbus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

// TestAckAsyncAcknowledges: with AckAsync every handled message is still
// acknowledged (the durable ends with nothing pending), and nothing comes
// back after AckWait.
func TestAckAsyncAcknowledges(t *testing.T) {
	ne := testenv.NATS(t)
	pub := natsbus.NewPublisher(ne.JS)
	for i := 0; i < 50; i++ {
		if _, err := pub.Publish(context.Background(), ne.Names.Subject(events.SubjectBillingUsage), usageEnv(t, fmt.Sprintf("req-%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	c := newConsumer(t, ne, func(cfg *natsbus.ConsumerConfig) {
		cfg.AckMode = natsbus.AckAsync
		cfg.AckWait = time.Second
		cfg.BatchSize = 7
	})
	handled := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }
	lagZero := func() bool {
		lag, err := c.Lag(context.Background())
		return err == nil && lag == 0
	}
	var sawLagZero bool
	runUntil(t, c, func(_ context.Context, d natsbus.Delivery) error {
		mu.Lock()
		seen[d.Env.ID]++
		mu.Unlock()
		return nil
	}, func() bool {
		if handled() == 50 && lagZero() {
			sawLagZero = true
		}
		return sawLagZero
	})
	// Past AckWait: a message whose ack had not reached the server would be
	// delivered again; a second run must get nothing.
	time.Sleep(1500 * time.Millisecond)
	again := 0
	second := newConsumer(t, ne, func(cfg *natsbus.ConsumerConfig) { cfg.AckMode = natsbus.AckAsync })
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_ = second.Run(ctx, func(context.Context, natsbus.Delivery) error { again++; return nil })
	if again != 0 {
		t.Fatalf("%d acknowledged messages were delivered again", again)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s handled %d times", id, n)
		}
	}
}

package natsbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

// publishBatch stores the envelopes as one batch message.
func publishBatch(t *testing.T, ne testenv.NATSEnv, envs ...[]byte) {
	t.Helper()
	m := natsbus.NewBatchMsg(ne.Names.Subject(events.SubjectBillingUsage), natsbus.NewBatchID(), events.TypeBillingUsage,
		len(envs), events.AppendBatch(nil, envs...))
	if _, err := ne.JS.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

func encodedUsage(t *testing.T, id string) []byte {
	t.Helper()
	b, err := json.Marshal(usageEnv(t, id))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBatchMessageIsSettledEnvelopeByEnvelope(t *testing.T) {
	ne := testenv.NATS(t)
	publishBatch(t, ne, encodedUsage(t, "req-1"), []byte(`{"id":"","type":"billing.usage","v":1}`),
		encodedUsage(t, "req-poison"), encodedUsage(t, "req-3"))
	var mu sync.Mutex
	parts := map[string][2]int{}
	outcomes := map[natsbus.Outcome]int{}
	var observed atomic.Int32
	c := newConsumer(t, ne, func(cfg *natsbus.ConsumerConfig) {
		cfg.Observe = func(o natsbus.Outcome, _ natsbus.Delivery, _ error) {
			mu.Lock()
			outcomes[o]++
			mu.Unlock()
			observed.Add(1)
		}
	})
	runUntil(t, c, func(ctx context.Context, d natsbus.Delivery) error {
		mu.Lock()
		parts[d.Env.ID] = [2]int{d.Part, d.Parts}
		mu.Unlock()
		if d.Env.ID == "req-poison" {
			return natsbus.Permanent(errors.New("unknown user"))
		}
		return nil
	}, func() bool { return observed.Load() == 4 })

	mu.Lock()
	defer mu.Unlock()
	want := map[string][2]int{"req-1": {0, 4}, "req-poison": {2, 4}, "req-3": {3, 4}}
	for id, w := range want {
		if parts[id] != w {
			t.Fatalf("%s handed over as part %v, want %v (all: %v)", id, parts[id], w, parts)
		}
	}
	if outcomes[natsbus.OutcomeAcked] != 2 || outcomes[natsbus.OutcomeDead] != 2 {
		t.Fatalf("outcomes %v, want 2 acked and 2 dead", outcomes)
	}
	dead := deadMessages(t, ne)
	if len(dead) != 2 {
		t.Fatalf("%d dead messages, want 2 (one per bad envelope)", len(dead))
	}
	if p := dead[0].Headers().Get(events.HeaderDeadPart); p != "1" || string(dead[0].Data()) != `{"id":"","type":"billing.usage","v":1}` {
		t.Fatalf("dead[0]: part %q body %s", p, dead[0].Data())
	}
	env, err := events.ParseEnvelope(dead[1].Data())
	if err != nil || env.ID != "req-poison" || dead[1].Headers().Get(events.HeaderDeadReason) != "unknown user" {
		t.Fatalf("dead[1]: %s %v %v", dead[1].Data(), err, dead[1].Headers())
	}
	if lag, _ := c.Lag(context.Background()); lag != 0 {
		t.Fatalf("lag = %d", lag)
	}
}

func TestBatchMessageRetriedWholeOnTransientFailure(t *testing.T) {
	ne := testenv.NATS(t)
	publishBatch(t, ne, encodedUsage(t, "req-a"), encodedUsage(t, "req-b"))
	var mu sync.Mutex
	calls := map[string]int{}
	var acked atomic.Int32
	c := newConsumer(t, ne, func(cfg *natsbus.ConsumerConfig) {
		cfg.Observe = func(o natsbus.Outcome, _ natsbus.Delivery, _ error) {
			if o == natsbus.OutcomeAcked {
				acked.Add(1)
			}
		}
	})
	runUntil(t, c, func(ctx context.Context, d natsbus.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		calls[d.Env.ID]++
		if d.Env.ID == "req-b" && d.NumDelivered == 1 {
			return errors.New("database down")
		}
		return nil
	}, func() bool { return acked.Load() == 2 })
	mu.Lock()
	defer mu.Unlock()
	if calls["req-a"] != 2 || calls["req-b"] != 2 {
		t.Fatalf("calls %v: the whole message must come again after a transient failure", calls)
	}
}

func TestBatchEnvelopesCarryTheirOwnTrace(t *testing.T) {
	ne := testenv.NATS(t)
	withTrace := func(id, tp string) []byte {
		env := usageEnv(t, id)
		env.TraceParent = tp
		b, _ := json.Marshal(env)
		return b
	}
	publishBatch(t, ne,
		withTrace("req-x", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
		withTrace("req-y", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
		withTrace("req-z", ""))
	var got sync.Map
	var n atomic.Int32
	c := newConsumer(t, ne, nil)
	installTraceContext()
	runUntil(t, c, func(ctx context.Context, d natsbus.Delivery) error {
		got.Store(d.Env.ID, traceID(d.Ctx))
		n.Add(1)
		return nil
	}, func() bool { return n.Load() == 3 })
	for id, want := range map[string]string{"req-x": "4bf92f3577b34da6a3ce929d0e0e4736",
		"req-y": "0af7651916cd43dd8448eb211c80319c", "req-z": "00000000000000000000000000000000"} {
		if v, _ := got.Load(id); v != want {
			t.Fatalf("%s: trace id %v, want %s", id, v, want)
		}
	}
}

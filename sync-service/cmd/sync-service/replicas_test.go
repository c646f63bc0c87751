package main

import (
	"net/url"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

// Two replicas on one namespace each run their own consumer: a user's
// devices connected to either replica all get the event, and a device that
// moves to the other replica resumes there without loss.
func TestReplicasEachDeliverEveryEvent(t *testing.T) {
	ne, re := testenv.NATS(t), testenv.Redis(t)
	r1 := startStackOn(t, ne, re, nil)
	r2 := startStackOn(t, ne, re, nil)
	key := r1.user("usr_rep")
	r2.billing.AddKey(key, internalapi.VerifyKeyResponse{KeyID: "key_usr_rep", UserID: "usr_rep", UserActive: true})

	on1 := r1.dial(key, url.Values{"device_id": {"a"}})
	on2 := r2.dial(key, url.Values{"device_id": {"b"}})
	r1.waitMetric("lurus_sync_connections", "1")
	r2.waitMetric("lurus_sync_connections", "1")
	first := r1.publish("usr_rep", events.TypeBalanceChanged, events.BalanceChanged{BalanceMicros: 1})
	for _, c := range []*websocket.Conn{on1, on2} {
		if e := readEvent(t, c); e.ID != first.ID {
			t.Fatalf("got %s, want %s", e.ID, first.ID)
		}
	}
	on1.Close()
	missed := r1.publish("usr_rep", events.TypeBalanceChanged, events.BalanceChanged{BalanceMicros: 2})
	moved := r2.dial(key, url.Values{"device_id": {"a"}, "last_event_id": {first.ID}})
	if e := readEvent(t, moved); e.ID != missed.ID {
		t.Fatalf("resumed on the other replica with %s, want %s", e.ID, missed.ID)
	}
}

package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
)

// NATSEnv is a connection and a namespace of streams owned by one test.
type NATSEnv struct {
	Conn      *nats.Conn
	JS        jetstream.JetStream
	URL       string
	Namespace string
	Names     events.Names
}

// NATS connects to the test NATS server (JetStream required), creates the
// contract's streams in a fresh namespace and deletes them when the test
// ends.
func NATS(t testing.TB) NATSEnv {
	t.Helper()
	url := env("LURUS_NATS_URL", DefaultNATSURL)
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second), nats.MaxReconnects(-1))
	if err != nil {
		unavailable(t, "NATS", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		t.Fatalf("testenv: jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		nc.Close()
		unavailable(t, "NATS JetStream", err)
	}
	ns := UniqueName("t")
	e := NATSEnv{Conn: nc, JS: js, URL: url, Namespace: ns, Names: events.NewNames(ns)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := natsbus.DeleteStreams(ctx, js, e.Names); err != nil {
			t.Errorf("testenv: %v", err)
		}
		nc.Close()
	})
	if err := natsbus.EnsureStreams(ctx, js, e.Names, natsbus.StreamOptions{}); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return e
}

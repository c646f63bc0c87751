package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

// The benchmark runs end to end at a small scale: it starts the built
// binary, connects clients, publishes and accounts for every delivery.
func TestBenchSmall(t *testing.T) {
	ne := testenv.NATS(t) // skips or fails like every integration test when NATS is missing
	re := testenv.Redis(t)
	bin := filepath.Join(t.TempDir(), "sync-service")
	if out, err := exec.Command("go", "build", "-o", bin, "../sync-service").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	r, err := Run(context.Background(), Options{
		Bin: bin, Clients: 60, Users: 20, Events: 40, Rate: 400, Concurrency: 8, Settle: 0,
		NATSURL: ne.URL, RedisAddr: re.Addr, GCPercent: 35,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Connected != 60 || r.Expected != 120 || r.Delivered != r.Expected || r.Duplicates != 0 || r.Sync.N != r.Expected || r.Baseline.N != 40 {
		t.Fatalf("result %+v", r)
	}
	var out strings.Builder
	r.Print(&out)
	for _, want := range []string{"memory per idle connection: RSS", "ratio sync/baseline", "deliveries 120 of 120"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("report lacks %q:\n%s", want, out.String())
		}
	}
}

package service

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestWriteEventGolden pins the SSE wire format of user events.
func TestWriteEventGolden(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var buf bytes.Buffer
	for _, tc := range []struct {
		id, typ string
		data    any
	}{
		{"01JGQ5D3Z8K7C4V2N1M0P9R8S7", events.TypeBalanceChanged, events.BalanceChanged{BalanceMicros: 9_000_000,
			DeltaMicros: -1_000_000, Kind: "usage", LedgerEntryID: "led_01JGQ5D3Z8K7C4V2N1M0P9R8S6", RequestID: "req-1"}},
		{"01JGQ5D3Z8K7C4V2N1M0P9R8S8", events.TypeQuotaLow, events.QuotaLow{Threshold: events.ThresholdQuota,
			QuotaLimitTokens: 1000, QuotaUsedTokens: 800, QuotaRemainingTokens: 200, BalanceMicros: 9_000_000}},
	} {
		env, err := events.NewEnvelope(tc.id, tc.typ, "usr_01JGQ5D3Z8K7C4V2N1M0P9R8S0", at, tc.data)
		if err != nil {
			t.Fatal(err)
		}
		if err := writeEvent(&buf, env); err != nil {
			t.Fatal(err)
		}
	}
	golden := filepath.Join("testdata", "sse_events.golden")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("SSE transcript differs from %s (run with -update to accept):\n%s", golden, buf.Bytes())
	}
}

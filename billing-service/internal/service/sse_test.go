package service

import (
	"bytes"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/golden"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

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
	golden.Bytes(t, "sse_events.golden", buf.Bytes())
}

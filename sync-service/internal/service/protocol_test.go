package service

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/golden"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"

	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// The server → client messages, byte for byte: clients parse these.
func TestServerMessagesGolden(t *testing.T) {
	at := time.Date(2026, 1, 8, 12, 30, 45, 123456789, time.UTC)
	env, err := events.NewEnvelope("01KAZ0J7Y3V5Q2M9W8T6R4P1N0", events.TypeBalanceChanged, "usr_01KAZ0HZ", at,
		events.BalanceChanged{BalanceMicros: 9_998_000, DeltaMicros: -2000, ReservedMicros: 0, Kind: "usage", LedgerEntryID: "led_01KAZ0J7", RequestID: "01KAZ0J6"})
	if err != nil {
		t.Fatal(err)
	}
	state := internalapi.SyncState{UserID: "usr_01KAZ0HZ", BalanceMicros: 9_998_000, CreditLimitMicros: 0, ReservedMicros: 1500,
		QuotaLimitTokens: 1_000_000, QuotaUsedTokens: 1500, QuotaRemainingTokens: 998_500,
		PeriodStart: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), LastEventID: "01KAZ0J7Y3V5Q2M9W8T6R4P1N0", AsOf: at}
	var transcript bytes.Buffer
	for _, msg := range [][]byte{
		EncodeEvent(env),
		EncodeSyncState("s1", StateRequested, state),
		EncodeSyncState("", StateResumeUnavailable, state),
		EncodePong("p1", at),
		EncodePong("", at),
		EncodeError("m7", apperr.New(apperr.ReasonInvalidMessage, `unknown message type "dance"`)),
		EncodeError("", errors.New("pq: connection refused to 10.0.0.5")),
		EncodeEvent(events.Envelope{ID: "01KAZ0J7Y3V5Q2M9W8T6R4P1N1", Type: events.TypeQuotaLow, OccurredAt: at}),
	} {
		if !json.Valid(msg) {
			t.Fatalf("invalid JSON %s", msg)
		}
		transcript.Write(msg)
		transcript.WriteByte('\n')
	}
	golden.Bytes(t, "server_messages.golden", transcript.Bytes())
}

func TestParseClientMessage(t *testing.T) {
	tests := []struct {
		in      string
		typ     string
		types   int
		wantErr bool
	}{
		{`{"type":"ping"}`, MsgPing, 0, false},
		{`{"type":"ping","id":"abc","extra":1}`, MsgPing, 0, false},
		{`{"type":"subscribe","types":["balance.changed","quota.low"]}`, MsgSubscribe, 2, false},
		{`{"type":"subscribe"}`, MsgSubscribe, 0, false},
		{`{"type":"sync_request"}`, MsgSyncRequest, 0, false},
		{`{"type":"dance"}`, "", 0, true},
		{`{"type":""}`, "", 0, true},
		{`{}`, "", 0, true},
		{`[]`, "", 0, true},
		{`{"type":7}`, "", 0, true},
		{`{"type":"ping","id":"` + string(bytes.Repeat([]byte("x"), 65)) + `"}`, "", 0, true},
		{`not json`, "", 0, true},
	}
	for _, tt := range tests {
		m, err := ParseClientMessage([]byte(tt.in))
		if tt.wantErr {
			if apperr.ReasonOf(err) != apperr.ReasonInvalidMessage {
				t.Errorf("%s: err = %v", tt.in, err)
			}
			continue
		}
		if err != nil || m.Type != tt.typ || len(m.Types) != tt.types {
			t.Errorf("%s: %+v %v", tt.in, m, err)
		}
	}
}

package publisher

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

// TestEnvelopesDecodeLikeEncodingJSON checks the hand-written envelopes
// against what events.NewEnvelope (encoding/json) makes of the same data.
func TestEnvelopesDecodeLikeEncodingJSON(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	local := time.FixedZone("x", 3600) // the encoder writes UTC whatever the zone
	o := &biz.Outcome{RequestID: "01J00000000000000000000000", TraceID: "0af7651916cd43dd8448eb211c80319c",
		UserID: "usr_1", KeyID: "key_1", Model: "gpt-4o \"quoted\"\n", UpstreamModel: "up\x01\xffmodel", ProviderID: "prv_1",
		Format: biz.FormatAnthropic, Endpoint: biz.EndpointMessages, Stream: true, StatusCode: 200, ErrorReason: "",
		Attempts: 2, StartedAt: start.In(local), FinishedAt: start.Add(1500 * time.Millisecond).In(local), TTFB: 20 * time.Millisecond,
		Usage: biz.Usage{Prompt: 10, Completion: 20, Cached: 3, CacheWrite: 2, Reasoning: 5}, UsageSource: "upstream",
		Status: "ok", Reserved: true, Admission: biz.Admission{ReservationID: "lease:gw1:key_1", Micros: 1234, Tokens: 56},
		ClientIP: netip.MustParseAddr("::ffff:10.0.0.1"), UserAgent: "sdk/1.0 ünï <&>",
		UpstreamFormat: biz.FormatGemini, Upstreamed: true}

	wantUsage := events.Usage{RequestID: o.RequestID, UserID: o.UserID, KeyID: o.KeyID, Model: o.Model,
		UpstreamModel: o.UpstreamModel, ProviderID: o.ProviderID, APIFormat: "anthropic", Endpoint: "messages",
		Stream: true, PromptTokens: 10, CompletionTokens: 20, CachedTokens: 3, CacheWriteTokens: 2, ReasoningTokens: 5,
		UsageSource: "upstream", Status: "ok", ReservationID: "lease:gw1:key_1", ReservedMicros: 1234, ReservedTokens: 56, StartedAt: start, FinishedAt: start.Add(1500 * time.Millisecond)}
	wantLog := events.LogRecord{RequestID: o.RequestID, TraceID: o.TraceID, UserID: o.UserID, KeyID: o.KeyID,
		Model: o.Model, UpstreamModel: o.UpstreamModel, ProviderID: o.ProviderID, APIFormat: "anthropic",
		Endpoint: "messages", Stream: true, StatusCode: 200, Attempts: 2, LatencyMs: 1500, TTFBMs: 20,
		PromptTokens: 10, CompletionTokens: 20, CachedTokens: 3, CacheWriteTokens: 2, ReasoningTokens: 5,
		UsageSource: "upstream", ClientIP: o.ClientIP.String(), UserAgent: o.UserAgent, CreatedAt: start,
		UpstreamFormat: "gemini"}

	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	check := func(name string, got []byte, typ string, want any, decode func(events.Envelope) (any, error)) {
		t.Helper()
		ref, err := events.NewEnvelope(o.RequestID, typ, o.UserID, o.FinishedAt, want)
		if err != nil {
			t.Fatal(err)
		}
		refRaw, _ := json.Marshal(ref)
		gEnv, err := events.ParseEnvelope(got)
		if err != nil {
			t.Fatalf("%s: %v: %s", name, err, got)
		}
		rEnv, _ := events.ParseEnvelope(refRaw)
		gData, err := decode(gEnv)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		rData, _ := decode(rEnv)
		if !reflect.DeepEqual(gData, rData) || gEnv.ID != rEnv.ID || gEnv.Type != rEnv.Type ||
			!gEnv.OccurredAt.Equal(rEnv.OccurredAt) || gEnv.UserID != rEnv.UserID || gEnv.TraceParent != tp {
			t.Errorf("%s differs:\n got %s\nwant %s", name, got, refRaw)
		}
	}
	check("billing.usage", appendUsageEnvelope(nil, o, tp), events.TypeBillingUsage, wantUsage,
		func(e events.Envelope) (any, error) { return events.DecodeData[events.Usage](e) })
	check("log.write", appendLogEnvelope(nil, o, tp), events.TypeLogWrite, wantLog,
		func(e events.Envelope) (any, error) { return events.DecodeData[events.LogRecord](e) })
}

func TestEnvelopeWithoutTraceHasNoTraceField(t *testing.T) {
	o := &biz.Outcome{RequestID: "01J00000000000000000000000", UserID: "usr_1"}
	for _, b := range [][]byte{appendUsageEnvelope(nil, o, ""), appendLogEnvelope(nil, o, "")} {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m["traceparent"]; ok {
			t.Fatalf("traceparent written without a trace: %s", b)
		}
	}
}

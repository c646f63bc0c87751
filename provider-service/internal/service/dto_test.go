package service

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/golden"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/biz"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func sampleProvider() biz.Provider {
	return biz.Provider{
		ID: "prv_01JAAAAAAAAAAAAAAAAAAAAAAA", Name: "azure-east", Type: "azure-openai",
		BaseURL: "https://east.openai.azure.com", APIVersion: "2024-10-21",
		Keys: []biz.Key{
			{ID: "pk_01JBBBBBBBBBBBBBBBBBBBBBBB", Masked: "3f9a…c0de", Enabled: true, RPMLimit: 500, TPMLimit: 200000, CreatedAt: t0},
			{ID: "pk_01JCCCCCCCCCCCCCCCCCCCCCCC", Masked: "…", Enabled: false, CreatedAt: t0},
		},
		Models: []string{"gpt-4o*", "text-embedding-3-large"}, ModelMapping: map[string]string{"gpt-4": "gpt-4o"},
		Priority: 5, Weight: 2, Enabled: true, PassthroughOnly: true,
		Timeouts: biz.Timeouts{ConnectMs: 2000, FirstByteMs: 30000, IdleMs: 15000, TotalMs: 600000},
		Headers:  map[string]string{"X-Ms-Useragent": "lurus"}, CreatedAt: t0, UpdatedAt: t0.Add(time.Hour),
	}
}

func TestGoldenProvider(t *testing.T) {
	golden.JSON(t, "provider.json", fromProvider(sampleProvider()))
}

func TestGoldenList(t *testing.T) {
	next := encodeCursor("prv_01JAAAAAAAAAAAAAAAAAAAAAAA")
	golden.JSON(t, "list.json", listJSON{Items: []providerJSON{fromProvider(sampleProvider())}, NextCursor: &next})
}

func TestGoldenHealth(t *testing.T) {
	golden.JSON(t, "health.json", fromHealth(biz.Health{
		ProviderID: "prv_01JAAAAAAAAAAAAAAAAAAAAAAA", Status: biz.HealthDegraded, CheckedAt: t0,
		Keys: []biz.KeyHealth{
			{KeyID: "pk_01JBBBBBBBBBBBBBBBBBBBBBBB", Masked: "sk-…abcd", Enabled: true,
				ProbeResult: biz.ProbeResult{Reachable: true, AuthOK: true, StatusCode: 200, LatencyMs: 84}},
			{KeyID: "pk_01JCCCCCCCCCCCCCCCCCCCCCCC", Masked: "sk-…wxyz", Enabled: true,
				ProbeResult: biz.ProbeResult{Reachable: true, StatusCode: 401, LatencyMs: 61, Error: "upstream answered 401 Unauthorized"}},
		},
	}))
	golden.JSON(t, "health_unknown.json", fromHealth(biz.Health{ProviderID: "prv_01JAAAAAAAAAAAAAAAAAAAAAAA", Status: biz.HealthUnknown, Keys: []biz.KeyHealth{}}))
}

func TestKeyInputForms(t *testing.T) {
	tests := []struct {
		in      string
		want    biz.KeyInput
		wantErr bool
	}{
		{`"sk-abc"`, biz.KeyInput{Secret: "sk-abc", Enabled: true}, false},
		{`{"key":"sk-abc"}`, biz.KeyInput{Secret: "sk-abc", Enabled: true}, false},
		{`{"key":"sk-abc","enabled":false}`, biz.KeyInput{Secret: "sk-abc", Enabled: false}, false},
		{`{"id":"pk_1","masked":"sk-…abcd","enabled":true,"created_at":"2026-01-01T00:00:00Z"}`, biz.KeyInput{ID: "pk_1", Enabled: true}, false},
		{`{"secret":"sk-abc"}`, biz.KeyInput{}, true},
		{`42`, biz.KeyInput{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var k keyInputJSON
			err := json.Unmarshal([]byte(tt.in), &k)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && k.toBiz() != tt.want {
				t.Fatalf("got %+v, want %+v", k.toBiz(), tt.want)
			}
		})
	}
}

func TestCursorRoundTrip(t *testing.T) {
	id, err := decodeCursor(encodeCursor("prv_X"))
	if err != nil || id != "prv_X" {
		t.Fatalf("%q %v", id, err)
	}
	for _, bad := range []string{"prv_X", "!!", encodeCursor("")} {
		if _, err := decodeCursor(bad); err == nil {
			t.Errorf("cursor %q accepted", bad)
		}
	}
}

func TestETagMatches(t *testing.T) {
	for header, want := range map[string]bool{
		`"7"`: true, `W/"7"`: true, `"6", "7"`: true, `*`: true, `7`: true, `"6"`: false, ``: false, `"77"`: false,
	} {
		if got := etagMatches(header, 7); got != want {
			t.Errorf("etagMatches(%q) = %v", header, got)
		}
	}
}

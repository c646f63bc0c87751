package data

import (
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/golden"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/biz"
)

// TestGoldenSnapshot pins the gateway's view of a provider (the body of GET
// /internal/v1/providers/snapshot).
func TestGoldenSnapshot(t *testing.T) {
	p := biz.Provider{
		ID: "prv_01JAAAAAAAAAAAAAAAAAAAAAAA", Name: "anthropic", Type: "anthropic", BaseURL: "https://api.anthropic.com",
		APIVersion: "2023-06-01", Models: []string{"claude-*"}, ModelMapping: map[string]string{"sonnet": "claude-sonnet-4-5"},
		Priority: 1, Weight: 3, Enabled: true, Timeouts: biz.Timeouts{ConnectMs: 1000, TotalMs: 300000}, PassthroughOnly: true,
		Headers: map[string]string{"Anthropic-Beta": "prompt-caching-2024-07-31"},
	}
	snap := internalapi.Snapshot{Version: 12, Providers: []internalapi.Provider{
		toSnapshotProvider(p, []internalapi.ProviderKey{{ID: "pk_01JBBBBBBBBBBBBBBBBBBBBBBB", Key: "sk-ant-test", RPMLimit: 50, TPMLimit: 40000}}),
		toSnapshotProvider(biz.Provider{ID: "prv_01JCCCCCCCCCCCCCCCCCCCCCCC", Name: "nokeys", Type: "gemini",
			BaseURL: "https://generativelanguage.googleapis.com", Models: []string{"gemini-*"},
			ModelMapping: map[string]string{}, Headers: map[string]string{}, Weight: 1, Enabled: true}, nil),
	}}
	golden.JSON(t, "snapshot.json", snap)
}

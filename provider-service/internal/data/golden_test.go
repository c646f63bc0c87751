package data

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/biz"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestGoldenSnapshot pins the gateway's view of a provider (the body of GET
// /internal/v1/providers/snapshot).
func TestGoldenSnapshot(t *testing.T) {
	p := biz.Provider{
		ID: "prv_01JAAAAAAAAAAAAAAAAAAAAAAA", Name: "anthropic", Type: "anthropic", BaseURL: "https://api.anthropic.com",
		APIVersion: "2023-06-01", Models: []string{"claude-*"}, ModelMapping: map[string]string{"sonnet": "claude-sonnet-4-5"},
		Priority: 1, Weight: 3, Enabled: true, Timeouts: biz.Timeouts{ConnectMs: 1000, TotalMs: 300000},
		Headers: map[string]string{"Anthropic-Beta": "prompt-caching-2024-07-31"},
	}
	snap := internalapi.Snapshot{Version: 12, Providers: []internalapi.Provider{
		toSnapshotProvider(p, []internalapi.ProviderKey{{ID: "pk_01JBBBBBBBBBBBBBBBBBBBBBBB", Key: "sk-ant-test"}}),
		toSnapshotProvider(biz.Provider{ID: "prv_01JCCCCCCCCCCCCCCCCCCCCCCC", Name: "nokeys", Type: "gemini",
			BaseURL: "https://generativelanguage.googleapis.com", Models: []string{"gemini-*"},
			ModelMapping: map[string]string{}, Headers: map[string]string{}, Weight: 1, Enabled: true}, nil),
	}}
	got, err := json.MarshalIndent(snap, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "snapshot.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("snapshot differs from the golden file:\n%s", got)
	}
}

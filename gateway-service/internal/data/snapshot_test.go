package data

import (
	"reflect"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit"
)

// TestProviderSnapshot: every field of provider-service's snapshot reaches
// the router, and a timeout of 0 ms takes the router's default.
func TestProviderSnapshot(t *testing.T) {
	in := internalapi.Snapshot{Version: 7, Providers: []internalapi.Provider{{
		ID: "prv_a", Name: "A", Type: internalapi.TypeAzureOpenAI, BaseURL: "https://a.example", APIVersion: "2024-06-01",
		Keys:   []internalapi.ProviderKey{{ID: "k1", Key: "sk-1", RPMLimit: 60, TPMLimit: 1000}},
		Models: []string{"gpt-4o", "o*"}, ModelMapping: map[string]string{"fast": "gpt-4o"},
		Priority: 3, Weight: 2, Timeouts: internalapi.Timeouts{ConnectMs: 1500, TotalMs: 0, FirstByteMs: -1, IdleMs: 20},
		Headers: map[string]string{"X-A": "1"}, AllowPrivateNetwork: true, PassthroughOnly: true,
	}}}
	defaults := biz.Timeouts{Connect: time.Second, FirstByte: 2 * time.Second, Idle: 3 * time.Second, Total: 4 * time.Second}
	r := biz.NewRouter(biz.RouterConfig{Defaults: defaults}, biz.NewBreakers(biz.BreakerConfig{ConsecutiveFailures: 1}))
	r.Load(ProviderSnapshot(in))
	s := r.Snapshot()
	if s.Version != 7 || len(s.Providers) != 1 {
		t.Fatalf("snapshot %+v", s)
	}
	p := s.Providers[0]
	if p.ID != "prv_a" || p.Name != "A" || p.Type != internalapi.TypeAzureOpenAI || p.BaseURL != "https://a.example" ||
		p.APIVersion != "2024-06-01" || p.Priority != 3 || p.Weight != 2 || !p.AllowPrivateNetwork || !p.PassthroughOnly ||
		!reflect.DeepEqual(p.Headers, map[string]string{"X-A": "1"}) {
		t.Fatalf("provider %+v", p)
	}
	want := biz.Timeouts{Connect: 1500 * time.Millisecond, FirstByte: 2 * time.Second, Idle: 20 * time.Millisecond, Total: 4 * time.Second}
	if p.Timeouts != want {
		t.Fatalf("timeouts %+v, want %+v", p.Timeouts, want)
	}
	if len(p.Keys) != 1 || p.Keys[0].ID != "k1" || p.Keys[0].Secret != "sk-1" || p.Keys[0].Breaker == nil ||
		p.Keys[0].Limits != (ratelimit.Limits{RPM: 60, TPM: 1000}) {
		t.Fatalf("keys %+v", p.Keys)
	}
	for model, upstream := range map[string]string{"gpt-4o": "gpt-4o", "o1": "o1", "fast": "gpt-4o"} {
		if got, _, ok := p.Resolve(model); !ok || got != upstream {
			t.Errorf("Resolve(%q) = %q %v, want %q", model, got, ok, upstream)
		}
	}
}

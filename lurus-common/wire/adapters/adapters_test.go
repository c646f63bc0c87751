package adapters

import (
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// pending are the provider types whose adapters are written elsewhere and
// wired at merge; when one is registered, drop it from here.
var pending = map[string]bool{}

// TestEveryTypeHasAnAdapter keeps the registry in step with the provider
// types: every known type has an adapter with the abilities the relay and
// the probe need, except the ones still pending.
func TestEveryTypeHasAnAdapter(t *testing.T) {
	for _, typ := range internalapi.ProviderTypes {
		_, ok := For(typ)
		if ok == pending[typ] {
			t.Errorf("%s: registered %v, pending %v", typ, ok, pending[typ])
		}
		if !ok {
			continue
		}
		if _, ok := Writer(typ); !ok {
			t.Errorf("%s: no RequestWriter", typ)
		}
		if _, ok := ErrorDecoder(typ); !ok {
			t.Errorf("%s: no ErrorDecoder", typ)
		}
		for name, has := range map[string]bool{
			"ResponseDecoder": func() bool { _, ok := As[wire.ResponseDecoder](typ); return ok }(),
			"StreamDecoder":   func() bool { _, ok := As[wire.StreamDecoder](typ); return ok }(),
			"UsageReader":     func() bool { _, ok := As[wire.UsageReader](typ); return ok }(),
		} {
			if !has {
				t.Errorf("%s: no %s", typ, name)
			}
		}
	}
	for _, typ := range []string{"", "cohere", "OpenAI"} {
		if _, ok := For(typ); ok {
			t.Errorf("unknown type %q has an adapter", typ)
		}
		if _, ok := Writer(typ); ok {
			t.Errorf("unknown type %q has a writer", typ)
		}
	}
}

// TestWriterBuildsTheVendorURL checks that the registry hands out the
// writer that knows each type's URL and credential convention.
func TestWriterBuildsTheVendorURL(t *testing.T) {
	req := &wire.Request{Op: wire.OpGenerate, MaxOutputTokens: 1,
		Messages: []wire.Message{{Role: wire.RoleUser, Parts: []wire.Part{{Kind: wire.PartText, Text: "ping"}}}}}
	for _, c := range []struct {
		u       wire.Upstream
		url     string
		authKey string
	}{
		{wire.Upstream{Type: internalapi.TypeOpenAI, BaseURL: "https://api.openai.com/v1/", Secret: "s", Model: "gpt-4o"},
			"https://api.openai.com/v1/chat/completions", "Authorization"},
		{wire.Upstream{Type: internalapi.TypeAzureOpenAI, BaseURL: "https://r.openai.azure.com", Secret: "s", Model: "my dep/1"},
			"https://r.openai.azure.com/openai/deployments/my%20dep%2F1/chat/completions?api-version=2024-10-21", "api-key"},
	} {
		w, ok := Writer(c.u.Type)
		if !ok {
			t.Fatalf("%s: no writer", c.u.Type)
		}
		hr, err := w.WriteRequest(req, c.u)
		if err != nil || hr.URL != c.url || hr.Headers[0].Key != c.authKey {
			t.Errorf("%s: %+v, %v", c.u.Type, hr, err)
		}
	}
}

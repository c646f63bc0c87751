package adapters

import (
	"slices"
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

// TestLocate: the registry's locator of each provider type places every
// operation of its family as the relay's pass-through always has — base
// URLs with /v1 (OpenAI, compatible) or without (Anthropic, Gemini, the
// Azure resource), a trailing '/' removed; Azure's deployment path and
// api-version (default 2024-10-21, query-escaped); Gemini's version
// (default v1beta) and model segment, with alt=sse only on a stream asked
// as SSE; a model in the path escaped as one segment ('/', ':', '@', '+'
// included) and flagged PathModel; each type's credential header.
func TestLocate(t *testing.T) {
	const az, gm = internalapi.TypeAzureOpenAI, internalapi.TypeGemini
	bearer := wire.Header{Key: "Authorization", Value: "Bearer sk"}
	for _, c := range []struct {
		name      string
		u         wire.Upstream
		call      wire.Call
		url       string
		auth      wire.Header
		pathModel bool
	}{
		{"openai chat", wire.Upstream{Type: internalapi.TypeOpenAI, BaseURL: "https://api.openai.com/v1/"},
			wire.Call{Path: "/chat/completions"}, "https://api.openai.com/v1/chat/completions", bearer, false},
		{"openai legacy completions", wire.Upstream{Type: internalapi.TypeOpenAI, BaseURL: "https://api.openai.com/v1"},
			wire.Call{Path: "/completions"}, "https://api.openai.com/v1/completions", bearer, false},
		{"openai responses, model not in the URL", wire.Upstream{Type: internalapi.TypeOpenAI, BaseURL: "https://api.openai.com/v1", Model: "a/b:c"},
			wire.Call{Path: "/responses", SSE: true}, "https://api.openai.com/v1/responses", bearer, false},
		{"compatible embeddings", wire.Upstream{Type: internalapi.TypeOpenAICompatible, BaseURL: "http://vllm:8000/v1//"},
			wire.Call{Path: "/embeddings"}, "http://vllm:8000/v1/embeddings", bearer, false},
		{"azure default api-version", wire.Upstream{Type: az, BaseURL: "https://r.openai.azure.com/", Model: "gpt-4o"},
			wire.Call{Path: "/chat/completions"}, "https://r.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
			wire.Header{Key: "api-key", Value: "sk"}, true},
		{"azure api-version escaped, deployment one segment", wire.Upstream{Type: az, BaseURL: "https://r.openai.azure.com", APIVersion: "2025-01-01 preview&x", Model: "dep:1@a+b/c"},
			wire.Call{Path: "/embeddings"}, "https://r.openai.azure.com/openai/deployments/dep%3A1%40a%2Bb%2Fc/embeddings?api-version=2025-01-01+preview%26x",
			wire.Header{Key: "api-key", Value: "sk"}, true},
		{"azure responses on the deployments surface", wire.Upstream{Type: az, BaseURL: "https://r.openai.azure.com", APIVersion: "preview", Model: "d"},
			wire.Call{Path: "/responses"}, "https://r.openai.azure.com/openai/deployments/d/responses?api-version=preview",
			wire.Header{Key: "api-key", Value: "sk"}, true},
		{"anthropic messages", wire.Upstream{Type: internalapi.TypeAnthropic, BaseURL: "https://api.anthropic.com/", APIVersion: "2024-01-01", Model: "claude@x"},
			wire.Call{Path: "/v1/messages"}, "https://api.anthropic.com/v1/messages", wire.Header{Key: "x-api-key", Value: "sk"}, false},
		{"anthropic count tokens", wire.Upstream{Type: internalapi.TypeAnthropic, BaseURL: "http://127.0.0.1:9/proxy"},
			wire.Call{Path: "/v1/messages/count_tokens"}, "http://127.0.0.1:9/proxy/v1/messages/count_tokens", wire.Header{Key: "x-api-key", Value: "sk"}, false},
		{"gemini default version", wire.Upstream{Type: gm, BaseURL: "https://generativelanguage.googleapis.com/", Model: "gemini-2.5-pro"},
			wire.Call{Path: "generateContent"}, "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:generateContent",
			wire.Header{Key: "x-goog-api-key", Value: "sk"}, true},
		{"gemini stream as sse", wire.Upstream{Type: gm, BaseURL: "https://g.example", Model: "gemini-2.5-pro"},
			wire.Call{Path: "streamGenerateContent", SSE: true}, "https://g.example/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
			wire.Header{Key: "x-goog-api-key", Value: "sk"}, true},
		{"gemini stream as a JSON array", wire.Upstream{Type: gm, BaseURL: "https://g.example", Model: "gemini-2.5-pro"},
			wire.Call{Path: "streamGenerateContent"}, "https://g.example/v1beta/models/gemini-2.5-pro:streamGenerateContent",
			wire.Header{Key: "x-goog-api-key", Value: "sk"}, true},
		{"gemini alt=sse only on a stream", wire.Upstream{Type: gm, BaseURL: "https://g.example", Model: "text-embedding-004"},
			wire.Call{Path: "batchEmbedContents", SSE: true}, "https://g.example/v1beta/models/text-embedding-004:batchEmbedContents",
			wire.Header{Key: "x-goog-api-key", Value: "sk"}, true},
		{"gemini version, model one segment", wire.Upstream{Type: gm, BaseURL: "https://g.example/", APIVersion: "v1", Model: "x:countTokens/a@b+c"},
			wire.Call{Path: "countTokens"}, "https://g.example/v1/models/x%3AcountTokens%2Fa%40b%2Bc:countTokens",
			wire.Header{Key: "x-goog-api-key", Value: "sk"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, ok := Locator(c.u.Type)
			if !ok {
				t.Fatalf("%s: no Locator", c.u.Type)
			}
			c.u.Secret = "sk"
			loc, err := l.Locate(c.u, c.call)
			if err != nil {
				t.Fatal(err)
			}
			if loc.URL != c.url || loc.Auth != c.auth || loc.PathModel != c.pathModel {
				t.Errorf("Locate = %+v\nwant URL %s, auth %v, path model %v", loc, c.url, c.auth, c.pathModel)
			}
		})
	}
	for _, typ := range internalapi.ProviderTypes {
		if _, ok := Locator(typ); !ok && !pending[typ] {
			t.Errorf("%s: no Locator", typ)
		}
	}
	for _, typ := range []string{"", "cohere"} {
		if _, ok := Locator(typ); ok {
			t.Errorf("unknown type %q has a locator", typ)
		}
	}
}

// TestDefaultHeaders: a relayed Anthropic call carries anthropic-version
// 2023-06-01 unless its client sent one, whatever the provider's
// api_version (which only translated calls carry); the other types need
// no header of their own.
func TestDefaultHeaders(t *testing.T) {
	for _, typ := range internalapi.ProviderTypes {
		d, ok := As[wire.HeaderDefaulter](typ)
		if typ != internalapi.TypeAnthropic {
			if ok {
				t.Errorf("%s: default headers %v", typ, d.DefaultHeaders())
			}
			continue
		}
		want := []wire.Header{{Key: "anthropic-version", Value: "2023-06-01"}}
		if !ok || !slices.Equal(d.DefaultHeaders(), want) {
			t.Errorf("%s: default headers %v, want %v", typ, d, want)
		}
	}
}

// TestWritersLocate: each writer puts its call where the type's locator
// places it, with its credential header.
func TestWritersLocate(t *testing.T) {
	req := &wire.Request{Op: wire.OpGenerate, MaxOutputTokens: 1, Stream: true,
		Messages: []wire.Message{{Role: wire.RoleUser, Parts: []wire.Part{{Kind: wire.PartText, Text: "ping"}}}}}
	calls := map[string]wire.Call{
		internalapi.TypeOpenAI: {Path: "/chat/completions"}, internalapi.TypeAzureOpenAI: {Path: "/chat/completions"},
		internalapi.TypeOpenAICompatible: {Path: "/chat/completions"}, internalapi.TypeAnthropic: {Path: "/v1/messages"},
		internalapi.TypeGemini: {Path: "streamGenerateContent", SSE: true},
	}
	for _, typ := range internalapi.ProviderTypes {
		u := wire.Upstream{Type: typ, BaseURL: "https://u.example/base/", Secret: "sk", Model: "m-1@x"}
		w, _ := Writer(typ)
		l, _ := Locator(typ)
		hr, err := w.WriteRequest(req, u)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		loc, err := l.Locate(u, calls[typ])
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if hr.URL != loc.URL || !slices.Contains(hr.Headers, loc.Auth) {
			t.Errorf("%s: writer %s %v, locator %s %v", typ, hr.URL, hr.Headers, loc.URL, loc.Auth)
		}
	}
}

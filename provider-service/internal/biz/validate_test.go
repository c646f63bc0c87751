package biz

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// fakeResolver answers from a table; other names do not resolve.
type fakeResolver map[string]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return []netip.Addr{netip.MustParseAddr(a)}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

var testValidator = Validator{Resolver: fakeResolver{
	"api.openai.com":    "162.159.140.245",
	"api.anthropic.com": "160.79.104.10",
	"internal.corp":     "10.1.2.3",
	"metadata.cloud":    "169.254.169.254",
	"cgnat.example":     "100.64.1.1",
	"ula.example":       "fd00::5",
}}

func validSpec() Spec {
	return Spec{
		Name: "openai-main", Type: "openai", BaseURL: "https://api.openai.com/v1",
		Keys: []KeyInput{{Secret: "sk-proj-abcdefghijklmnop", Enabled: true}}, Models: []string{"gpt-4o*", "gpt-4.1"},
		ModelMapping: map[string]string{"gpt-4": "gpt-4o"}, Weight: 1, Enabled: true,
		Headers: map[string]string{"openai-organization": "org-1"},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Spec)
		reason apperr.Reason // "" = valid
	}{
		{"valid", func(*Spec) {}, ""},
		{"empty name", func(s *Spec) { s.Name = "  " }, apperr.ReasonInvalidArgument},
		{"unknown type", func(s *Spec) { s.Type = "cohere" }, apperr.ReasonUnknownType},
		{"empty type", func(s *Spec) { s.Type = "" }, apperr.ReasonUnknownType},
		{"url not parseable", func(s *Spec) { s.BaseURL = "http://[::1" }, apperr.ReasonInvalidURL},
		{"url empty", func(s *Spec) { s.BaseURL = "" }, apperr.ReasonInvalidURL},
		{"url ftp", func(s *Spec) { s.BaseURL = "ftp://api.openai.com/v1" }, apperr.ReasonInvalidURL},
		{"url relative", func(s *Spec) { s.BaseURL = "/v1" }, apperr.ReasonInvalidURL},
		{"url with credentials", func(s *Spec) { s.BaseURL = "https://u:p@api.openai.com/v1" }, apperr.ReasonInvalidURL},
		{"url with query", func(s *Spec) { s.BaseURL = "https://api.openai.com/v1?x=1" }, apperr.ReasonInvalidURL},
		{"url bad port", func(s *Spec) { s.BaseURL = "https://api.openai.com:99999/v1" }, apperr.ReasonInvalidURL},
		{"openai without version", func(s *Spec) { s.BaseURL = "https://api.openai.com" }, apperr.ReasonInvalidURL},
		{"anthropic with version", func(s *Spec) {
			s.Type, s.BaseURL = "anthropic", "https://api.anthropic.com/v1"
		}, apperr.ReasonInvalidURL},
		{"anthropic ok", func(s *Spec) { s.Type, s.BaseURL = "anthropic", "https://api.anthropic.com" }, ""},
		{"azure without api_version", func(s *Spec) { s.Type, s.BaseURL = "azure-openai", "https://res.openai.azure.com" }, apperr.ReasonInvalidArgument},
		{"azure with /openai path", func(s *Spec) {
			s.Type, s.BaseURL, s.APIVersion = "azure-openai", "https://res.openai.azure.com/openai/deployments", "2024-10-21"
		}, apperr.ReasonInvalidURL},
		{"api_version on openai", func(s *Spec) { s.APIVersion = "2024-10-21" }, apperr.ReasonInvalidArgument},
		{"loopback literal", func(s *Spec) { s.BaseURL = "http://127.0.0.1:8080/v1" }, apperr.ReasonPrivateNetwork},
		{"ipv6 loopback", func(s *Spec) { s.BaseURL = "http://[::1]:8080/v1" }, apperr.ReasonPrivateNetwork},
		{"rfc1918 literal", func(s *Spec) { s.BaseURL = "https://192.168.1.10/v1" }, apperr.ReasonPrivateNetwork},
		{"name resolving private", func(s *Spec) { s.BaseURL = "https://internal.corp/v1" }, apperr.ReasonPrivateNetwork},
		{"link-local metadata", func(s *Spec) { s.BaseURL = "http://metadata.cloud/v1" }, apperr.ReasonPrivateNetwork},
		{"cgnat", func(s *Spec) { s.BaseURL = "https://cgnat.example/v1" }, apperr.ReasonPrivateNetwork},
		{"ipv6 ula", func(s *Spec) { s.BaseURL = "https://ula.example/v1" }, apperr.ReasonPrivateNetwork},
		{"private allowed", func(s *Spec) { s.BaseURL, s.AllowPrivateNetwork = "http://127.0.0.1:18190/v1", true }, ""},
		{"unresolvable accepted", func(s *Spec) { s.BaseURL = "https://not-yet-in-dns.example/v1" }, ""},
		{"negative weight", func(s *Spec) { s.Weight = -1 }, apperr.ReasonInvalidWeight},
		{"huge weight", func(s *Spec) { s.Weight = MaxWeight + 1 }, apperr.ReasonInvalidWeight},
		{"zero weight", func(s *Spec) { s.Weight = 0 }, ""},
		{"priority out of range", func(s *Spec) { s.Priority = MaxPriority + 1 }, apperr.ReasonInvalidArgument},
		{"no models", func(s *Spec) { s.Models = nil }, apperr.ReasonEmptyModels},
		{"malformed glob", func(s *Spec) { s.Models = []string{"gpt-[4"} }, apperr.ReasonInvalidGlob},
		{"blank model", func(s *Spec) { s.Models = []string{" "} }, apperr.ReasonInvalidGlob},
		{"malformed alias glob", func(s *Spec) { s.ModelMapping = map[string]string{"gpt-]": "gpt-4o"} }, apperr.ReasonInvalidGlob},
		{"glob as upstream", func(s *Spec) { s.ModelMapping = map[string]string{"gpt-4": "gpt-4o*"} }, apperr.ReasonInvalidGlob},
		{"model outside the grammar", func(s *Spec) { s.Models = []string{"gpt-4o#frag"} }, apperr.ReasonInvalidModelName},
		{"model with dot segment", func(s *Spec) { s.Models = []string{"a/../b"} }, apperr.ReasonInvalidModelName},
		{"real names", func(s *Spec) {
			s.Models = []string{"meta-llama/Llama-3.1-70B", "claude-3-5-sonnet@20240620", "llama3:8b", "gpt-*"}
		}, ""},
		{"upstream outside the grammar", func(s *Spec) { s.ModelMapping = map[string]string{"fast": "x%2F..%2Fzz"} }, apperr.ReasonInvalidModelName},
		{"alias outside the grammar", func(s *Spec) { s.ModelMapping = map[string]string{"fa st": "gpt-4o"} }, apperr.ReasonInvalidGlob},
		{"alias with a hash", func(s *Spec) { s.ModelMapping = map[string]string{"fast#1": "gpt-4o"} }, apperr.ReasonInvalidModelName},
		{"gemini upstream with a colon", func(s *Spec) {
			s.Type, s.BaseURL = "gemini", "https://generativelanguage.googleapis.com"
			s.Models = []string{"gemini-*"}
			s.ModelMapping = map[string]string{"cheap": "gemini-x:countTokens"}
		}, apperr.ReasonInvalidModelName},
		{"gemini upstream with a slash", func(s *Spec) {
			s.Type, s.BaseURL = "gemini", "https://generativelanguage.googleapis.com"
			s.Models = []string{"gemini-*"}
			s.ModelMapping = map[string]string{"pro": "models/gemini-pro"}
		}, apperr.ReasonInvalidModelName},
		{"gemini ok", func(s *Spec) {
			s.Type, s.BaseURL = "gemini", "https://generativelanguage.googleapis.com"
			s.Models = []string{"gemini-*", "gemini-2.5-pro"}
			s.ModelMapping = map[string]string{"pro": "gemini-2.5-pro"}
		}, ""},
		{"negative timeout", func(s *Spec) { s.Timeouts.IdleMs = -5 }, apperr.ReasonInvalidArgument},
		{"first byte over total", func(s *Spec) { s.Timeouts = Timeouts{FirstByteMs: 5000, TotalMs: 1000} }, apperr.ReasonInvalidArgument},
		{"credential header", func(s *Spec) { s.Headers = map[string]string{"authorization": "Bearer x"} }, apperr.ReasonInvalidArgument},
		{"forwarded header", func(s *Spec) { s.Headers = map[string]string{"X-Forwarded-For": "1.2.3.4"} }, apperr.ReasonInvalidArgument},
		{"header line break", func(s *Spec) { s.Headers = map[string]string{"X-A": "a\r\nB: c"} }, apperr.ReasonInvalidArgument},
		{"bad header name", func(s *Spec) { s.Headers = map[string]string{"X A": "1"} }, apperr.ReasonInvalidArgument},
		{"empty key", func(s *Spec) { s.Keys = []KeyInput{{Secret: " "}} }, apperr.ReasonInvalidArgument},
		{"key with space", func(s *Spec) { s.Keys = []KeyInput{{Secret: "sk-abc def"}} }, apperr.ReasonInvalidArgument},
		{"duplicate key", func(s *Spec) { s.Keys = append(s.Keys, s.Keys[0]) }, apperr.ReasonInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSpec()
			tt.mutate(&s)
			err := testValidator.Validate(context.Background(), &s)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if got := apperr.ReasonOf(err); got != tt.reason {
				t.Fatalf("reason = %s (%v), want %s", got, err, tt.reason)
			}
			if apperr.KindOf(err) != apperr.KindInvalid {
				t.Fatalf("kind = %v, want invalid (400)", apperr.KindOf(err))
			}
		})
	}
}

func TestValidateNormalizes(t *testing.T) {
	s := validSpec()
	s.Name = "  spaced  "
	s.BaseURL = " https://api.openai.com/v1/ "
	s.Models = []string{"gpt-4o", " gpt-4o ", "o3*"}
	s.Headers = map[string]string{"openai-organization": "org"}
	if err := testValidator.Validate(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
	if s.Name != "spaced" || s.BaseURL != "https://api.openai.com/v1" {
		t.Fatalf("name %q, base_url %q", s.Name, s.BaseURL)
	}
	if strings.Join(s.Models, ",") != "gpt-4o,o3*" {
		t.Fatalf("models %v", s.Models)
	}
	if s.Headers["Openai-Organization"] != "org" || len(s.Headers) != 1 {
		t.Fatalf("headers %v", s.Headers)
	}
}

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		{"sk-proj-abcdefghijklmnopabcd", "sk-…abcd"},
		{"sk-ant-api03-xyzxyzxyz1234", "sk-…1234"},
		{"AIzaSyA1234567890wxyz", "AIza…wxyz"},
		{"shortkey99", "…99"},
		{"tiny", "…"},
	}
	for _, tt := range tests {
		if got := Mask(tt.in); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPatchApply(t *testing.T) {
	base := validSpec()
	w, name := 7, "renamed"
	idle := int64(1500)
	keys := []KeyInput{{ID: "pk_1", Enabled: false}}
	got := Patch{Name: &name, Weight: &w, Keys: &keys, Timeouts: &TimeoutsPatch{IdleMs: &idle}}.Apply(base)
	if got.Name != "renamed" || got.Weight != 7 || got.Timeouts.IdleMs != 1500 || len(got.Keys) != 1 || got.Keys[0].ID != "pk_1" {
		t.Fatalf("patched = %+v", got)
	}
	if got.Type != base.Type || got.BaseURL != base.BaseURL || len(got.Models) != 2 || !got.Enabled {
		t.Fatalf("untouched fields changed: %+v", got)
	}
}

func TestServes(t *testing.T) {
	p := Provider{Models: []string{"gpt-4o*", "o3"}, ModelMapping: map[string]string{"claude-*": "x", "fast": "gpt-4o-mini"}}
	for model, want := range map[string]bool{
		"gpt-4o": true, "gpt-4o-mini": true, "o3": true, "o3-mini": false, "fast": true, "claude-3": true, "gpt-4": false,
	} {
		if got := Serves(p, model); got != want {
			t.Errorf("Serves(%q) = %v, want %v", model, got, want)
		}
	}
}

package biz

import "testing"

// TestProbeModel: the probe asks for what a client naming the provider's
// first exact model would get, resolved as the gateway's router does.
func TestProbeModel(t *testing.T) {
	for _, c := range []struct {
		name    string
		models  []string
		mapping map[string]string
		want    string
	}{
		{"first exact model", []string{"gpt-4o*", "gpt-4.1", "o3"}, nil, "gpt-4.1"},
		{"exact alias wins", []string{"gpt-4"}, map[string]string{"gpt-4": "gpt-4o", "gpt-*": "gpt-4o-mini"}, "gpt-4o"},
		{"most specific glob alias", []string{"gpt-4.1"}, map[string]string{"gpt-*": "a", "gpt-4*": "b"}, "b"},
		{"only globs: first mapping target", []string{"claude-*"}, map[string]string{"z": "zz", "sonnet": "claude-sonnet-4-5"}, "claude-sonnet-4-5"},
		{"only globs, no mapping", []string{"gemini-*"}, nil, ""},
	} {
		if got := ProbeModel(Provider{Models: c.models, ModelMapping: c.mapping}); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	p := Provider{Models: []string{"gpt-4o*"}, ModelMapping: map[string]string{"fast": "gpt-4o-mini"}}
	for m, want := range map[string]string{"gpt-4o-2024-08-06": "gpt-4o-2024-08-06", "fast": "gpt-4o-mini", "claude": ""} {
		if got := resolve(p, m); got != want {
			t.Errorf("resolve(%q) = %q, want %q", m, got, want)
		}
	}
}

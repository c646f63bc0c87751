package wire

import (
	"net/url"
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/modelname"
)

// TestPathSegment: a name of the model-name grammar is escaped exactly as
// modelname.PathSegment escapes it (the relay's rule); anything else as
// url.PathEscape, with ':' escaped too.
func TestPathSegment(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"gpt-4o", "gpt-4o"},
		{"llama3:8b", "llama3%3A8b"},
		{"meta-llama/Llama-3.1-70B", "meta-llama%2FLlama-3.1-70B"},
		{"claude-3-5-sonnet@20240620", "claude-3-5-sonnet%4020240620"},
		{"4o+search", "4o%2Bsearch"},
		{"x:countTokens", "x%3AcountTokens"},
		{"a/../b?x=1", "a%2F..%2Fb%3Fx=1"},
		{"my dep/1?x#y%", "my%20dep%2F1%3Fx%23y%25"},
		{"", ""},
	} {
		if got := PathSegment(c.in); got != c.want {
			t.Errorf("PathSegment(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzPathSegment: the escaped name is one segment that decodes to the
// name, and a grammatical name matches modelname.PathSegment.
func FuzzPathSegment(f *testing.F) {
	for _, s := range []string{"gpt-4o", "a/b:c@d+e", "x?alt=sse#f", "ü/%2F", "models/gemini-pro"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := PathSegment(s)
		if strings.ContainsAny(got, "/?#:") {
			t.Fatalf("PathSegment(%q) = %q: more than one segment", s, got)
		}
		if back, err := url.PathUnescape(got); err != nil || back != s {
			t.Fatalf("PathSegment(%q) = %q decodes to %q, %v", s, got, back, err)
		}
		if modelname.Valid(s) && got != modelname.PathSegment(s) {
			t.Fatalf("PathSegment(%q) = %q, modelname.PathSegment %q", s, got, modelname.PathSegment(s))
		}
	})
}

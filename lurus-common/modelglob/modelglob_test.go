package modelglob

import (
	"errors"
	"testing"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		p, name string
		want    bool
	}{
		{"gpt-4o", "gpt-4o", true},
		{"gpt-4o", "gpt-4o-mini", false},
		{"gpt-4o*", "gpt-4o-mini", true},
		{"gpt-4o*", "gpt-4o", true},
		{"gpt-4o*", "gpt-4", false},
		{"*", "anything/at-all", true},
		{"meta-llama/*", "meta-llama/Llama-3-70b", true},
		{"*llama*", "meta-llama/Llama-3", true},
		{"claude-?-opus", "claude-3-opus", true},
		{"claude-?-opus", "claude-35-opus", false},
		{"claude-[34]-*", "claude-4-sonnet", true},
		{"claude-[34]-*", "claude-5-sonnet", false},
		{"v[0-9]", "v7", true},
		{"v[!0-9]", "v7", false},
		{"v[!0-9]", "vx", true},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"*-mini", "gpt-4o-mini", true},
		{"gpt-[4", "gpt-4", false},
		// Patterns Validate refuses match nothing, not even themselves.
		{"", "", false},
		{"x]", "x]", false},
		{"a b", "a b", false},
	}
	for _, tt := range tests {
		if got := Match(tt.p, tt.name); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.p, tt.name, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, ok := range []string{"gpt-4o", "gpt-4o*", "claude-[34]-*", "v[!0-9]", "a/b?c"} {
		if err := Validate(ok); err != nil {
			t.Errorf("Validate(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "gpt-[4", "gpt-4]", "gpt 4", "x[]", "x[!]", "tab\tname"} {
		if err := Validate(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("Validate(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

func TestSpecificity(t *testing.T) {
	if !(Specificity("gpt-4o") > Specificity("gpt-4o*") && Specificity("gpt-4o*") > Specificity("gpt-*") && Specificity("gpt-*") > Specificity("*")) {
		t.Fatal("specificity order")
	}
}

func FuzzMatchNeverPanics(f *testing.F) {
	f.Add("a*b?[c-d]", "axxbyc")
	f.Fuzz(func(t *testing.T, p, s string) {
		Match(p, s)
		_ = Validate(p)
	})
}

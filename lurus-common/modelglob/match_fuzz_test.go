package modelglob

import (
	"strings"
	"testing"
)

// refToken is one element of a pattern as refMatch reads it.
type refToken struct {
	star bool      // '*': any run of bytes, '/' included
	set  [256]bool // the bytes one position accepts ('?', a class or a literal)
}

// refMatch is a second, independent reading of the pattern language:
// the pattern is split into tokens first, then dynamic programming over
// (token, name position) decides the match. Slow and plainly right; the
// fuzz target holds Match to it. ok is false for a pattern the tokenizer
// cannot read (an unclosed or empty class).
func refMatch(p, name string) (match, ok bool) {
	var toks []refToken
	for i := 0; i < len(p); i++ {
		var t refToken
		switch p[i] {
		case '*':
			t.star = true
		case '?':
			for b := range t.set {
				t.set[b] = true
			}
		case '[':
			j := i + 1
			negate := j < len(p) && p[j] == '!'
			if negate {
				j++
			}
			end := strings.IndexByte(p[j:], ']')
			if end <= 0 { // no ']' at all, or "[]" / "[!]"
				return false, false
			}
			class := p[j : j+end]
			for k := 0; k < len(class); k++ {
				if k+2 < len(class) && class[k+1] == '-' {
					for b := int(class[k]); b <= int(class[k+2]); b++ {
						t.set[b] = true
					}
					k += 2
					continue
				}
				t.set[class[k]] = true
			}
			if negate {
				for b := range t.set {
					t.set[b] = !t.set[b]
				}
			}
			i = j + end
		default:
			t.set[p[i]] = true
		}
		toks = append(toks, t)
	}
	// at[i][j]: toks[i:] matches name[j:].
	at := make([][]bool, len(toks)+1)
	for i := range at {
		at[i] = make([]bool, len(name)+1)
	}
	at[len(toks)][len(name)] = true
	for i := len(toks) - 1; i >= 0; i-- {
		for j := len(name); j >= 0; j-- {
			if toks[i].star {
				at[i][j] = at[i+1][j] || j < len(name) && at[i][j+1]
			} else {
				at[i][j] = j < len(name) && toks[i].set[name[j]] && at[i+1][j+1]
			}
		}
	}
	return at[0][0], true
}

// FuzzMatchAgreesWithReference checks Match against refMatch for every
// pattern Validate accepts, and the documented rule that a pattern it
// refuses matches nothing. '?' and a class take one byte: model names are
// ASCII. The seeds are the shapes configs use.
func FuzzMatchAgreesWithReference(f *testing.F) {
	for _, s := range [][2]string{
		{"gpt-4o*", "gpt-4o-mini"},
		{"claude-?-opus", "claude-3-opus"},
		{"meta-llama/*", "meta-llama/Llama-3.1-70B"},
		{"*", ""},
		{"*sonnet@*", "claude-3-5-sonnet@20240620"},
		{"llama3:[0-9]b", "llama3:8b"},
		{"gemini-[!0-9]*", "gemini-pro"},
		{"a*b*c*d", "aXbXcXd"},
		{"[a-c-e]", "-"},
		{"x]", "x]"},
		{"", ""},
		{"a b", "a b"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, p, name string) {
		if len(p) > 64 || len(name) > 64 {
			return // the DP is quadratic; longer inputs add nothing new
		}
		got := Match(p, name)
		if Validate(p) != nil {
			if got {
				t.Fatalf("Match(%q, %q) = true for a pattern Validate refuses", p, name)
			}
			return
		}
		want, ok := refMatch(p, name)
		if !ok {
			t.Fatalf("Validate accepts %q, which the reference cannot read", p)
		}
		if got != want {
			t.Fatalf("Match(%q, %q) = %v, reference says %v", p, name, got, want)
		}
		if !IsGlob(p) && got != (p == name) {
			t.Fatalf("literal pattern %q against %q: Match = %v", p, name, got)
		}
	})
}

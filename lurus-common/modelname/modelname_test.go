package modelname

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	valid := []string{
		"gpt-4o", "gpt-4o-mini-2024-07-18", "meta-llama/Llama-3.1-70B", "claude-3-5-sonnet@20240620",
		"llama3:8b", "gemini-2.5-pro", "text-embedding-3-small", "models/gemini-pro",
		"anthropic.claude-3-5-sonnet-20240620-v1:0", "accounts/fireworks/models/llama-v3p1-70b-instruct",
		"hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "openai/gpt-4o:online", "o1", "4o+search",
		"Qwen/Qwen2.5-72B-Instruct", strings.Repeat("a", MaxLen),
	}
	for _, n := range valid {
		if err := Check(n); err != nil {
			t.Errorf("Check(%q) = %v, want nil", n, err)
		}
	}
	invalid := []string{
		"", strings.Repeat("a", MaxLen+1),
		"gemini-2.5-pro:streamGenerateContent?alt=sse&", "gpt-4o#frag", "gpt%2F4o", "gpt-4o%",
		`a\b`, "gpt 4o", "gpt-4o\n", "gpt\t4o", "gpt\x00", "gpt\x7f", "gpt-4ö",
		"/gpt-4o", "gpt-4o/", "a//b", "../gpt", "a/../b", "a/./b", ".", "..", "a/..",
		"gpt-*", "gpt-?", "gpt-[4]", `"gpt"`, "gpt,4o", "gpt;4o", "a=b", "a&b",
		"-gpt", "_gpt", ":latest", "@x", "a/-b", "a/.hidden",
	}
	for _, n := range invalid {
		err := Check(n)
		if err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("Check(%q) = %v, want ErrInvalid", n, err)
		}
	}
}

func TestCheckSegment(t *testing.T) {
	for n, ok := range map[string]bool{
		"gemini-2.5-pro": true, "gemini-1.5-flash-001": true, "text-embedding-004": true, "gpt-4o_deploy": true,
		"models/gemini-pro": false, "llama3:8b": false, "a%2Fb": false, "": false,
	} {
		if err := CheckSegment(n); (err == nil) != ok {
			t.Errorf("CheckSegment(%q) = %v, want ok=%v", n, err, ok)
		}
	}
}

func TestPathSegment(t *testing.T) {
	for in, want := range map[string]string{
		"gemini-2.5-pro":             "gemini-2.5-pro",
		"meta-llama/Llama-3.1-70B":   "meta-llama%2FLlama-3.1-70B",
		"llama3:8b":                  "llama3%3A8b",
		"claude-3-5-sonnet@20240620": "claude-3-5-sonnet%4020240620",
		"a?b#c%d e":                  "a%3Fb%23c%25d%20e",
		"ö":                          "%C3%B6",
	} {
		if got := PathSegment(in); got != want {
			t.Errorf("PathSegment(%q) = %q, want %q", in, got, want)
		}
	}
}

// seeds are real names and the route exploits of issue 10.
var seeds = []string{
	"gpt-4o", "gpt-4o-mini-2024-07-18", "meta-llama/Llama-3.1-70B", "claude-3-5-sonnet@20240620", "llama3:8b",
	"gemini-2.5-pro", "text-embedding-3-small", "models/gemini-pro",
	"gemini-2.5-pro:streamGenerateContent?alt=sse&:countTokens", "gemini-2.5-pro%3Falt=sse", "x%23y",
	"x%252F..%252Fzz", "x/../zz", "..", "a%2Fb", "\x00", "é",
}

// FuzzModelName checks that an accepted name, escaped into an upstream URL as
// one segment in front of an action, parses back to that one segment and
// that action with no query or fragment, and that escaping round-trips
// for any input.
func FuzzModelName(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		esc := PathSegment(name)
		for i := 0; i < len(esc); i++ {
			if c := esc[i]; !unreserved(c) && c != '%' {
				t.Fatalf("PathSegment(%q) = %q keeps %q", name, esc, c)
			}
		}
		if back, err := url.PathUnescape(esc); err != nil || back != name {
			t.Fatalf("PathSegment(%q) = %q unescapes to %q, %v", name, esc, back, err)
		}
		err := Check(name)
		if CheckSegment(name) == nil && err != nil {
			t.Fatalf("CheckSegment accepts %q that Check refuses: %v", name, err)
		}
		if err != nil {
			return
		}
		if len(name) > MaxLen || strings.ContainsAny(name, "?#%\\ \t\r\n*[") || strings.HasPrefix(name, "/") {
			t.Fatalf("Check accepts %q", name)
		}
		for _, seg := range strings.Split(name, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("Check accepts %q with segment %q", name, seg)
			}
		}
		u, perr := url.Parse("https://upstream.example/v1beta/models/" + esc + ":generateContent")
		if perr != nil {
			t.Fatalf("escaped %q does not parse: %v", name, perr)
		}
		if u.RawQuery != "" || u.Fragment != "" || u.Path != "/v1beta/models/"+name+":generateContent" {
			t.Fatalf("escaped %q parses as path %q query %q fragment %q", name, u.Path, u.RawQuery, u.Fragment)
		}
		segs := strings.Split(u.EscapedPath(), "/")
		last := segs[len(segs)-1]
		if len(segs) != 4 || strings.Count(last, ":") != 1 || !strings.HasSuffix(last, ":generateContent") {
			t.Fatalf("escaped %q gives path %q", name, u.EscapedPath())
		}
	})
}

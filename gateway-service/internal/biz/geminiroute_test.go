package biz

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/modelname"
)

func TestParseGeminiPath(t *testing.T) {
	const p = GeminiModelsPrefix
	cases := []struct {
		raw    string
		model  string
		ep     Endpoint
		reason apperr.Reason
	}{
		{p + "gemini-2.5-pro:generateContent", "gemini-2.5-pro", EndpointGenerateContent, ""},
		{p + "gemini-2.5-flash:streamGenerateContent", "gemini-2.5-flash", EndpointStreamGenerateContent, ""},
		{p + "gemini-x:countTokens", "gemini-x", EndpointGeminiCountTokens, ""},
		{p + "text-embedding-004:embedContent", "text-embedding-004", EndpointEmbedContent, ""},
		{p + "text-embedding-004:batchEmbedContents", "text-embedding-004", EndpointBatchEmbedContents, ""},
		// Decoded exactly once: an encoded ':' is still the one separator.
		{p + "gemini-x%3AgenerateContent", "gemini-x", EndpointGenerateContent, ""},
		{p + "gemini%2Dx:generateContent", "gemini-x", EndpointGenerateContent, ""},

		// The issue 10 exploit and its variants.
		{p + "gemini-2.5-pro:streamGenerateContent%3Falt=sse%26:countTokens", "", 0, apperr.ReasonInvalidModelAction},
		{p + "gemini-2.5-pro%3Falt=sse%26:countTokens", "", 0, apperr.ReasonInvalidModelName},
		{p + "gemini-2.5-pro:streamGenerateContent%23:countTokens", "", 0, apperr.ReasonInvalidModelAction},
		{p + "gemini-2.5-pro%23:countTokens", "", 0, apperr.ReasonInvalidModelName},
		{p + "x%252F..%252F..%252Fzz:generateContent", "", 0, apperr.ReasonInvalidModelName},
		{p + "x%2F..%2F..%2Fzz:generateContent", "", 0, apperr.ReasonInvalidModelName},
		{p + "..%2F..%2Fzz:generateContent", "", 0, apperr.ReasonInvalidModelName},
		{p + "x/../../zz:generateContent", "", 0, apperr.ReasonInvalidModelName},
		{p + "%2E%2E:generateContent", "", 0, apperr.ReasonInvalidModelName},
		{p + "gemini-x%25:generateContent", "", 0, apperr.ReasonInvalidModelName},
		{p + "gemini-x%:generateContent", "", 0, apperr.ReasonInvalidModelName},
		{p + "gemini%20x:generateContent", "", 0, apperr.ReasonInvalidModelName},
		{p + "gemini-x%00:generateContent", "", 0, apperr.ReasonInvalidModelName},
		{p + "a:b:generateContent", "", 0, apperr.ReasonInvalidModelAction},
		{p + "a%3Ab:generateContent", "", 0, apperr.ReasonInvalidModelAction},
		{p + "llama3:8b:generateContent", "", 0, apperr.ReasonInvalidModelAction},

		// Actions: exactly one of the five.
		{p + "gemini-x:explode", "", 0, apperr.ReasonInvalidModelAction},
		{p + "gemini-x:generatecontent", "", 0, apperr.ReasonInvalidModelAction},
		{p + "gemini-x:", "", 0, apperr.ReasonInvalidModelAction},
		{p + "gemini-x", "", 0, apperr.ReasonInvalidModelAction},
		{p + ":generateContent", "", 0, apperr.ReasonInvalidModelName},
		{p + "gemini-x:generateContent/", "", 0, apperr.ReasonInvalidModelName},
		{p + "no-action-at-all/x", "", 0, apperr.ReasonInvalidModelName},
		{p, "", 0, apperr.ReasonInvalidModelAction},
		{"/v1beta//models/gemini-x:generateContent", "", 0, apperr.ReasonInvalidModelName},
		{"/v1beta/models/../models/gemini-x:generateContent", "", 0, apperr.ReasonInvalidModelName},
		{"/v1beta/%6Dodels/gemini-x:generateContent", "", 0, apperr.ReasonInvalidModelName},
	}
	for _, c := range cases {
		model, ep, err := ParseGeminiPath(c.raw)
		if c.reason != "" {
			if apperr.ReasonOf(err) != c.reason || apperr.KindOf(err) != apperr.KindInvalid || ep != EndpointNone {
				t.Errorf("ParseGeminiPath(%q) = %q %v %v, want %s (400)", c.raw, model, ep, err, c.reason)
			}
			continue
		}
		if err != nil || model != c.model || ep != c.ep {
			t.Errorf("ParseGeminiPath(%q) = %q %v %v, want %q %v", c.raw, model, ep, err, c.model, c.ep)
		}
	}
}

// upstreamOp reads back, from an upstream URL as the upstream parses it,
// which endpoint it runs and the model segment of its path: the Gemini
// action after the (only) ':' of the last segment, the path after the
// Azure deployment, or the path after the base of the other types.
func upstreamOp(t *testing.T, typ, basePath, raw string) (Endpoint, string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Fragment != "" {
		t.Fatalf("upstream URL %q: %v", raw, err)
	}
	rest, ok := strings.CutPrefix(u.EscapedPath(), basePath)
	if !ok {
		t.Fatalf("upstream URL %q is not under %q", raw, basePath)
	}
	var seg string
	switch typ {
	case internalapi.TypeGemini:
		rest, _ = strings.CutPrefix(rest, "/v1beta/models/")
		var action string
		seg, action, _ = strings.Cut(rest, ":")
		if strings.ContainsAny(seg, "/:") || strings.Contains(action, ":") {
			t.Fatalf("upstream URL %q: %q is not one model segment and one action", raw, rest)
		}
		m, _ := url.PathUnescape(seg)
		return GeminiAction(action), m
	case internalapi.TypeAzureOpenAI:
		rest, _ = strings.CutPrefix(rest, "/openai/deployments/")
		i := strings.IndexByte(rest, '/')
		seg, rest = rest[:i], rest[i:]
	}
	for ep := EndpointNone + 1; ep < EndpointModels; ep++ {
		if ep.Format() != FormatGemini && rest == endpointInfo[ep].op {
			m, _ := url.PathUnescape(seg)
			return ep, m
		}
	}
	return EndpointNone, ""
}

// TestUpstreamURLRunsTheBilledOperation: for every endpoint and provider
// type, and for awkward (but valid) upstream model names, the operation
// in the URL upstream receives is the endpoint that priced the call, so
// Billable() means the same thing on both sides.
func TestUpstreamURLRunsTheBilledOperation(t *testing.T) {
	models := []string{"gemini-2.5-pro", "llama3:8b", "meta-llama/Llama-3.1-70B", "claude-3-5-sonnet@20240620",
		"x:countTokens", "a+b", "gpt-4o"}
	for _, typ := range []string{internalapi.TypeOpenAI, internalapi.TypeOpenAICompatible, internalapi.TypeAzureOpenAI,
		internalapi.TypeAnthropic, internalapi.TypeGemini} {
		p := &Provider{Type: typ, BaseURL: "https://upstream.example/base/"}
		for ep := EndpointNone + 1; ep < EndpointModels; ep++ {
			if !ep.Format().Serves(typ) {
				continue
			}
			for _, m := range models {
				for _, sse := range []bool{false, true} {
					raw, err := UpstreamURL(p, ep, m, sse)
					if err != nil {
						t.Fatalf("%s %s %q: %v", typ, ep, m, err)
					}
					got, seg := upstreamOp(t, typ, "/base", raw)
					if got != ep || got.Billable() != ep.Billable() {
						t.Errorf("%s %s model %q: URL %q runs %s", typ, ep, m, raw, got)
					}
					if (typ == internalapi.TypeGemini || typ == internalapi.TypeAzureOpenAI) && seg != m {
						t.Errorf("%s: model %q is not the one path segment of %q", typ, m, raw)
					}
					u, _ := url.Parse(raw)
					q := u.Query()
					switch {
					case typ == internalapi.TypeAzureOpenAI:
						if len(q) != 1 || q.Get("api-version") == "" {
							t.Errorf("azure query %q", u.RawQuery)
						}
					case typ == internalapi.TypeGemini && sse && ep == EndpointStreamGenerateContent:
						if u.RawQuery != "alt=sse" {
							t.Errorf("gemini query %q", u.RawQuery)
						}
					default:
						if u.RawQuery != "" {
							t.Errorf("%s %s: query %q", typ, ep, u.RawQuery)
						}
					}
				}
			}
		}
	}
	// A model outside the grammar never reaches a URL path.
	for _, typ := range []string{internalapi.TypeAzureOpenAI, internalapi.TypeGemini} {
		p := &Provider{Type: typ, BaseURL: "https://upstream.example"}
		for _, m := range []string{"x?alt=sse", "x#y", "..", "x%2F..", ""} {
			if _, err := UpstreamURL(p, EndpointGenerateContent, m, false); apperr.ReasonOf(err) != apperr.ReasonInvalidModelName {
				t.Errorf("%s: UpstreamURL(%q) = %v, want INVALID_MODEL_NAME", typ, m, err)
			}
		}
	}
}

// goldenModels are the model names in the usage golden files.
func goldenModels(f *testing.F) []string {
	files, _ := filepath.Glob(filepath.Join("testdata", "usage", "*"))
	re := regexp.MustCompile(`"(?:model|modelVersion)"\s*:\s*"([^"]*)"`)
	var out []string
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			out = append(out, string(m[1]))
		}
	}
	if len(out) == 0 {
		f.Fatal("no model names in testdata/usage")
	}
	return out
}

// FuzzParseGeminiPath checks the route parser on any raw path: it never
// panics; what it accepts is one grammatical segment and one of the five
// actions; and the URL the gateway then sends upstream, parsed back the
// way the upstream parses it, names the same model and the same action
// (so the call is billed as what runs), with no query but alt=sse.
func FuzzParseGeminiPath(f *testing.F) {
	const p = GeminiModelsPrefix
	for _, m := range append(goldenModels(f), "gemini-2.5-pro", "text-embedding-004", "llama3:8b", "models/gemini-pro") {
		for _, a := range []string{"generateContent", "streamGenerateContent", "countTokens", "embedContent", "batchEmbedContents"} {
			f.Add(p + m + ":" + a)
			f.Add(p + url.PathEscape(m) + "%3A" + a)
		}
	}
	for _, s := range []string{
		"gemini-2.5-pro:streamGenerateContent%3Falt=sse%26:countTokens", "gemini-2.5-pro%3Falt=sse%26:countTokens",
		"gemini-2.5-pro%23:countTokens", "x%252F..%252F..%252Fzz:generateContent", "x%2F..%2F..%2Fzz:generateContent",
		"..%2F..%2Fzz:generateContent", "%2E%2E:generateContent", "gemini-x%25:generateContent", "gemini-x:explode",
		"a:b:generateContent", "gemini-x", "",
	} {
		f.Add(p + s)
	}
	gp := &Provider{Type: internalapi.TypeGemini, BaseURL: "https://upstream.example"}
	f.Fuzz(func(t *testing.T, raw string) {
		model, ep, err := ParseGeminiPath(raw)
		if err != nil {
			if k := apperr.KindOf(err); k != apperr.KindInvalid || ep != EndpointNone || model != "" {
				t.Fatalf("ParseGeminiPath(%q) = %q %v, kind %v", raw, model, ep, k)
			}
			return
		}
		if modelname.CheckSegment(model) != nil || ep.Format() != FormatGemini || GeminiAction(ep.String()) != ep {
			t.Fatalf("ParseGeminiPath(%q) accepted %q %v", raw, model, ep)
		}
		if tail, _ := url.PathUnescape(strings.TrimPrefix(raw, p)); tail != model+":"+ep.String() {
			t.Fatalf("ParseGeminiPath(%q) = %q %v, not the once-decoded segment %q", raw, model, ep, tail)
		}
		for _, sse := range []bool{false, true} {
			up, err := UpstreamURL(gp, ep, model, sse)
			if err != nil {
				t.Fatalf("UpstreamURL(%q): %v", model, err)
			}
			u, perr := url.Parse(up)
			if perr != nil || u.Fragment != "" || (u.RawQuery != "" && u.RawQuery != "alt=sse") {
				t.Fatalf("upstream URL %q for %q: %v", up, raw, perr)
			}
			// The upstream is a Gemini server too: the same parser, on the
			// path it receives, must find the same model and action.
			m2, ep2, err := ParseGeminiPath(u.EscapedPath())
			if err != nil || m2 != model || ep2 != ep || ep2.Billable() != ep.Billable() {
				t.Fatalf("upstream path %q reads as %q %v %v, gateway billed %q %v", u.EscapedPath(), m2, ep2, err, model, ep)
			}
		}
	})
}

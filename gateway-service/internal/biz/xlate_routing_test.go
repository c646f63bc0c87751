package biz

import (
	"slices"
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// Route serves a model from every family: within a priority the client's
// own family first, then the others; a higher priority of another family
// still comes before a lower one of the client's; opted-out providers and
// families an endpoint cannot be translated to are left out.
func TestRouteAcrossFamilies(t *testing.T) {
	r := NewRouter(RouterConfig{}, NewBreakers(BreakerConfig{ConsecutiveFailures: 1}))
	r.Load(Snapshot{Version: 1, Providers: []*Provider{
		{ID: "gem", Type: internalapi.TypeGemini, Priority: 5, Weight: 100, Models: []string{"m"}, Keys: keys("g")},
		{ID: "oa", Type: internalapi.TypeOpenAI, Priority: 5, Weight: 1, Models: []string{"m"}, Keys: keys("o")},
		{ID: "an", Type: internalapi.TypeAnthropic, Priority: 9, Weight: 1, Models: []string{"m"}, Keys: keys("a")},
		{ID: "an-pt", Type: internalapi.TypeAnthropic, Priority: 5, Weight: 1, Models: []string{"m", "only-pt"}, Keys: keys("p"),
			PassthroughOnly: true},
		{ID: "cmp", Type: internalapi.TypeOpenAICompatible, Priority: 1, Weight: 1, Models: []string{"m"}, Keys: keys("c")},
	}})
	order := func(f Format, ep Endpoint, model string) (string, error) {
		c, err := r.Route(f, model, crossFamily[ep], nil)
		s := ""
		for _, x := range c {
			if s != "" {
				s += ","
			}
			s += x.Provider.ID
			if x.Translate == f.Serves(x.Provider.Type) {
				t.Errorf("%s: Translate=%v for %s", f, x.Translate, x.Provider.ID)
			}
		}
		return s, err
	}
	cases := []struct {
		f     Format
		ep    Endpoint
		model string
		want  string
	}{
		{FormatOpenAI, EndpointChatCompletions, "m", "an,oa,gem,cmp"},
		// oa and gem share priority 5 and are both another family: their
		// order is the weighted round-robin's.
		{FormatAnthropic, EndpointMessages, "m", "an,an-pt,oa,gem,cmp|an,an-pt,gem,oa,cmp"},
		{FormatGemini, EndpointGenerateContent, "m", "an,gem,oa,cmp"},
		{FormatOpenAI, EndpointResponses, "m", "an,oa,gem,cmp"},
		// Legacy completions never cross; embeddings not to Anthropic;
		// count-tokens only where the target has a count call.
		{FormatOpenAI, EndpointCompletions, "m", "oa,cmp"},
		{FormatOpenAI, EndpointEmbeddings, "m", "oa,gem,cmp"},
		{FormatAnthropic, EndpointCountTokens, "m", "an,an-pt,gem"},
		{FormatGemini, EndpointGeminiCountTokens, "m", "an,gem"},
	}
	for _, c := range cases {
		got, err := order(c.f, c.ep, c.model)
		if err != nil || !slices.Contains(strings.Split(c.want, "|"), got) {
			t.Errorf("%s %s: %q %v, want %q", c.f, c.ep, got, err, c.want)
		}
	}
	if _, err := order(FormatOpenAI, EndpointChatCompletions, "only-pt"); apperr.ReasonOf(err) != apperr.ReasonModelNotFound {
		t.Errorf("opted-out provider: %v", err)
	}
	if _, err := order(FormatAnthropic, EndpointMessages, "only-pt"); err != nil {
		t.Errorf("opted-out provider, own family: %v", err)
	}
	if _, err := order(FormatOpenAI, EndpointChatCompletions, "nobody"); apperr.ReasonOf(err) != apperr.ReasonModelNotFound {
		t.Errorf("unlisted model: %v", err)
	}
	if !r.Lists(FormatOpenAI, "m") || r.Lists(FormatOpenAI, "only-pt") || !r.Lists(FormatAnthropic, "only-pt") {
		t.Error("Lists ignores the opt-out")
	}
	if got := r.Models(FormatOpenAI, func(string) bool { return true }); len(got) != 1 || got[0] != "m" {
		t.Errorf("OpenAI list %v, want [m] (only-pt opted out)", got)
	}
	if got := r.Models(FormatAnthropic, func(string) bool { return true }); len(got) != 2 {
		t.Errorf("Anthropic list %v", got)
	}
}

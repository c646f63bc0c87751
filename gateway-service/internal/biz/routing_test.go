package biz

import (
	"strings"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Unix(1_700_000_000, 0)} }
func keys(ids ...string) []*ProviderKey {
	var out []*ProviderKey
	for _, id := range ids {
		out = append(out, &ProviderKey{ID: id, Secret: "secret-" + id})
	}
	return out
}

func TestRouterPriorityWeightsAndKeys(t *testing.T) {
	b := NewBreakers(BreakerConfig{ConsecutiveFailures: 1, Cooldown: time.Hour})
	r := NewRouter(RouterConfig{}, b)
	r.Load(Snapshot{Version: 1, Providers: []*Provider{
		{ID: "low", Type: "openai", Priority: 0, Weight: 1, Models: []string{"gpt-*"}, Keys: keys("l1")},
		{ID: "a", Type: "openai", Priority: 10, Weight: 3, Models: []string{"gpt-4o"}, Keys: keys("a1", "a2")},
		{ID: "b", Type: "azure-openai", Priority: 10, Weight: 1, Models: []string{"gpt-4o"}, Keys: keys("b1")},
		{ID: "claude", Type: "anthropic", Priority: 99, Weight: 1, Models: []string{"claude-*"}, Keys: keys("c1")},
	}})
	firsts := map[string]int{}
	keyUse := map[string]int{}
	for i := 0; i < 8; i++ {
		c, err := r.Candidates(FormatOpenAI, "gpt-4o", nil)
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		for _, x := range c {
			order = append(order, x.Provider.ID)
		}
		if len(order) != 3 || order[2] != "low" {
			t.Fatalf("order %v: the priority-0 provider must come last, anthropic never", order)
		}
		firsts[order[0]]++
		if order[0] == "a" {
			keyUse[c[0].Key.ID]++
		}
	}
	if firsts["a"] != 6 || firsts["b"] != 2 {
		t.Errorf("smooth WRR picks %v, want a:6 b:2 for weights 3:1", firsts)
	}
	if keyUse["a1"] == 0 || keyUse["a2"] == 0 {
		t.Errorf("keys of a not rotated: %v", keyUse)
	}
	// An open breaker removes its key; a provider with no key left drops out.
	b.Get("b", "b1").Allow()
	b.Get("b", "b1").Record(false)
	c, _ := r.Candidates(FormatOpenAI, "gpt-4o", nil)
	for _, x := range c {
		if x.Provider.ID == "b" {
			t.Error("provider with an open breaker is still a candidate")
		}
	}
	// Errors: unknown model, no provider of the format, all breakers open.
	if _, err := r.Candidates(FormatOpenAI, "llama", nil); apperr.ReasonOf(err) != apperr.ReasonModelNotFound {
		t.Errorf("unknown model: %v", err)
	}
	if _, err := r.Candidates(FormatGemini, "gpt-4o", nil); apperr.ReasonOf(err) != apperr.ReasonModelNotFound {
		t.Errorf("model listed only by another family, no translation: %v", err)
	}
	b.Get("claude", "c1").Allow()
	b.Get("claude", "c1").Record(false)
	if _, err := r.Candidates(FormatAnthropic, "claude-x", nil); apperr.ReasonOf(err) != apperr.ReasonCircuitOpen {
		t.Errorf("all open: %v", err)
	}
}

func TestProviderResolve(t *testing.T) {
	r := NewRouter(RouterConfig{}, NewBreakers(BreakerConfig{}))
	r.Load(Snapshot{Providers: []*Provider{{ID: "p", Type: "openai",
		Models:       []string{"gpt-4o", "o*"},
		ModelMapping: map[string]string{"fast": "gpt-4o-mini", "team-*": "gpt-4o", "team-special-*": "o3"},
		Keys:         keys("k")}}})
	p := r.Snapshot().Providers[0]
	cases := map[string]string{"gpt-4o": "gpt-4o", "o1-preview": "o1-preview", "fast": "gpt-4o-mini",
		"team-x": "gpt-4o", "team-special-y": "o3", "claude": ""}
	for in, want := range cases {
		got, _, ok := p.Resolve(in)
		if ok != (want != "") || got != want {
			t.Errorf("Resolve(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
}

func TestBreaker(t *testing.T) {
	clk := newClock()
	var changes []string
	s := NewBreakers(BreakerConfig{ConsecutiveFailures: 3, FailureRate: 0.5, MinRequests: 10, Window: time.Minute,
		Cooldown: 10 * time.Second, Now: clk.now,
		OnChange: func(_, _ string, from, to BreakerState) { changes = append(changes, from.String()+">"+to.String()) }})
	b := s.Get("p", "k")
	rec := func(ok bool) {
		if !b.Allow() {
			t.Fatal("not allowed while closed")
		}
		b.Record(ok)
	}
	rec(false)
	rec(false)
	rec(true) // resets the run
	rec(false)
	rec(false)
	if b.State() != BreakerClosed {
		t.Fatal("opened before 3 consecutive failures")
	}
	rec(false)
	if b.State() != BreakerOpen || b.Allow() {
		t.Fatal("not open after 3 consecutive failures")
	}
	clk.add(10 * time.Second)
	if !b.Allow() || b.State() != BreakerHalfOpen {
		t.Fatal("no probe after the cool-down")
	}
	if b.Allow() {
		t.Fatal("a second probe while half-open")
	}
	b.Record(false)
	if b.State() != BreakerOpen {
		t.Fatal("failed probe did not reopen")
	}
	clk.add(10 * time.Second)
	b.Allow()
	b.Record(true)
	if b.State() != BreakerClosed {
		t.Fatal("successful probe did not close")
	}
	// Failure rate: alternating results never make 3 in a row, but half
	// of 10 in the window fail.
	for i := 0; i < 10; i++ {
		rec(i%2 == 0)
	}
	if b.State() != BreakerOpen {
		t.Fatal("failure rate over the window did not open")
	}
	want := "closed>open,open>half_open,half_open>open,open>half_open,half_open>closed,closed>open"
	if got := strings.Join(changes, ","); got != want {
		t.Errorf("transitions %s, want %s", got, want)
	}
}

func TestRetryBudget(t *testing.T) {
	b := NewRetryBudget(0.2, 3)
	retries := 0
	const requests = 1000
	for i := 0; i < requests; i++ {
		b.Earn()
		for b.Spend() { // persistent failure: retry whenever allowed
			retries++
		}
	}
	if limit := int(0.2*requests) + 3; retries > limit || retries < int(0.2*requests)-1 {
		t.Fatalf("%d retries for %d requests; want ≈ %d", retries, requests, limit)
	}
}

func TestResponseHeaderFilter(t *testing.T) {
	for h, want := range map[string]bool{
		"Set-Cookie": false, "Connection": false, "Transfer-Encoding": false, "Server": false,
		"Retry-After": true, "x-ratelimit-remaining-requests": true, "openai-processing-ms": true,
		"OpenAI-Organization": false, "anthropic-ratelimit-tokens-limit": true, "X-Request-Id": false,
		"openai-": false, "x-ratelimit-": false, "RETRY-AFTER": true,
	} {
		if got := responseHeaderAllowed([]byte(h)); got != want {
			t.Errorf("responseHeaderAllowed(%q) = %v", h, got)
		}
	}
}

func TestRewriteRequest(t *testing.T) {
	cases := []struct {
		name  string
		ep    Endpoint
		body  string
		model string
		want  string
	}{
		{"alias", EndpointChatCompletions, `{"model":"fast","messages":[]}`, "gpt-4o-mini", `{"model":"gpt-4o-mini","messages":[]}`},
		{"stream gets usage", EndpointChatCompletions, `{"model":"m","stream":true}`, "m", `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`},
		{"stream options kept", EndpointCompletions, `{"model":"m","stream":true,"stream_options":{"x":1}}`, "m", `{"model":"m","stream":true,"stream_options":{"x":1,"include_usage":true}}`},
		{"client asked", EndpointChatCompletions, `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`, "m", `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`},
		{"responses untouched", EndpointResponses, `{"model":"m","stream":true}`, "m", `{"model":"m","stream":true}`},
		{"gemini model in path", EndpointGenerateContent, `{"contents":[]}`, "other", `{"contents":[]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info, err := ParseRequest(c.ep, "gem", []byte(c.body), 16)
			if err != nil {
				t.Fatal(err)
			}
			out, err := RewriteRequest(c.ep, info, c.model, "openai", []byte(c.body))
			if err != nil || string(out) != c.want {
				t.Fatalf("got %s (%v), want %s", out, err, c.want)
			}
		})
	}
}

func TestParseRequest(t *testing.T) {
	cases := []struct {
		ep     Endpoint
		body   string
		reason apperr.Reason
		max    int64
	}{
		{EndpointChatCompletions, `{"model":"m","max_completion_tokens":7,"max_tokens":9}`, "", 7},
		{EndpointChatCompletions, `{"model":"m","max_output_tokens":1}`, "", 0},
		{EndpointResponses, `{"model":"m","max_output_tokens":5}`, "", 5},
		{EndpointMessages, `{"model":"m","max_tokens":3}`, "", 3},
		{EndpointGenerateContent, `{"generationConfig":{"maxOutputTokens":11}}`, "", 11},
		{EndpointChatCompletions, `[1,2]`, apperr.ReasonMalformedJSON, 0},
		{EndpointChatCompletions, `{"model":}`, apperr.ReasonMalformedJSON, 0},
		{EndpointChatCompletions, `{"model":5}`, apperr.ReasonInvalidArgument, 0},
		{EndpointChatCompletions, `{"stream":true}`, apperr.ReasonMissingModel, 0},
	}
	for _, c := range cases {
		info, err := ParseRequest(c.ep, "gem", []byte(c.body), 16)
		if apperr.ReasonOf(err) != c.reason && !(err == nil && c.reason == "") {
			t.Errorf("%s: err %v, want %s", c.body, err, c.reason)
		}
		if err == nil && info.MaxOutput != c.max {
			t.Errorf("%s: max %d, want %d", c.body, info.MaxOutput, c.max)
		}
	}
}

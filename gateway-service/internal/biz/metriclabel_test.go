package biz

import (
	"testing"
)

// The model label of a request's metrics is the configured entry that
// matched (exact model, glob, alias, alias glob) or "other", never the
// caller's string: a glob admits unboundedly many names.
func TestMetricModelIsTheMatchedEntry(t *testing.T) {
	r := NewRouter(RouterConfig{}, NewBreakers(BreakerConfig{}))
	r.Load(Snapshot{Providers: []*Provider{{ID: "p", Type: "openai",
		Models:       []string{"gpt-4o", "o*"},
		ModelMapping: map[string]string{"fast": "gpt-4o-mini", "team-*": "gpt-4o"},
		Keys:         keys("k")}}})
	for model, want := range map[string]string{
		"gpt-4o": "gpt-4o", "o1-preview-attacker-chosen-123": "o*", "fast": "fast", "team-anything-at-all": "team-*",
	} {
		c, err := r.Candidates(FormatOpenAI, model, nil)
		if err != nil || len(c) != 1 {
			t.Fatalf("%s: %v %v", model, c, err)
		}
		o := &Outcome{Model: model, ProviderID: c[0].Provider.ID, ModelLabel: c[0].Matched}
		if got := o.metricModel(); got != want {
			t.Errorf("model %q labelled %q, want %q", model, got, want)
		}
	}
	// Refused before a candidate was tried (unknown model, bad key, …).
	if got := (&Outcome{Model: "anything-a-caller-sends"}).metricModel(); got != MetricModelOther {
		t.Errorf("unmatched request labelled %q, want %q", got, MetricModelOther)
	}
}

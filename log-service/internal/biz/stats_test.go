package biz

import (
	"context"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

func TestAlign(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2025, 3, 10, h, m, 0, 0, time.UTC) }
	tests := []struct {
		name     string
		r        Range
		step     time.Duration
		from, to time.Time
	}{
		{"inside hours", Range{at(10, 15), at(12, 5)}, time.Hour, at(10, 0), at(13, 0)},
		{"already whole", Range{at(10, 0), at(12, 0)}, time.Hour, at(10, 0), at(12, 0)},
		{"days", Range{at(10, 15), at(12, 5)}, 24 * time.Hour, at(0, 0), at(24, 0)},
		{"non-UTC input", Range{at(10, 15).In(time.FixedZone("x", 5*3600+1800)), at(11, 0)}, time.Hour, at(10, 0), at(11, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Align(tt.r, tt.step)
			if !got.From.Equal(tt.from) || !got.To.Equal(tt.to) || got.From.Location() != time.UTC {
				t.Fatalf("got %s..%s", got.From, got.To)
			}
		})
	}
}

func TestDerive(t *testing.T) {
	tot := Totals{Requests: 4, Errors: 1, PromptTokens: 10, CompletionTokens: 5, LatencyMsSum: 100, TTFBMsSum: 30, TTFBCount: 3}
	tot.Derive()
	if tot.ErrorRate != 0.25 || tot.AvgLatencyMs != 25 || tot.AvgTTFBMs != 10 || tot.TotalTokens != 15 {
		t.Fatalf("%+v", tot)
	}
	var zero Totals
	zero.Derive()
	if zero.ErrorRate != 0 || zero.AvgLatencyMs != 0 || zero.AvgTTFBMs != 0 {
		t.Fatalf("%+v", zero)
	}
}

func TestSeriesFillsEmptyBuckets(t *testing.T) {
	h := func(n int) time.Time { return time.Date(2025, 3, 10, n, 0, 0, 0, time.UTC) }
	fr := &fakeReader{buckets: []Bucket{{Start: h(11), Totals: Totals{Requests: 2, LatencyMsSum: 10}}}}
	s, err := newTestQueries(fr).Series(context.Background(), Principal{Admin: true}, Hourly,
		Request{From: h(10).Add(30 * time.Minute), To: h(13)})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Items) != 3 || !s.From.Equal(h(10)) || s.Granularity != "hour" {
		t.Fatalf("series %+v", s)
	}
	if s.Items[0].Requests != 0 || s.Items[1].Requests != 2 || s.Items[1].AvgLatencyMs != 5 || !s.Items[2].Start.Equal(h(12)) {
		t.Fatalf("items %+v", s.Items)
	}
}

func TestRollupRoutesRefuseRawOnlyFilters(t *testing.T) {
	q := newTestQueries(&fakeReader{})
	yes := true
	for _, f := range []Filter{{KeyID: "key_1"}, {StatusClass: 5}, {Stream: &yes}} {
		_, err := q.Series(context.Background(), Principal{Admin: true}, Daily, Request{Filter: f})
		if apperr.ReasonOf(err) != apperr.ReasonInvalidArgument {
			t.Fatalf("%+v: %v", f, err)
		}
		if _, err := q.Summary(context.Background(), Principal{Admin: true}, Request{Filter: f}); err != nil {
			t.Fatalf("summary takes %+v: %v", f, err)
		}
	}
}

func TestDefaultRanges(t *testing.T) {
	fr := &fakeReader{}
	q := newTestQueries(fr)
	ctx := context.Background()
	if _, err := q.Series(ctx, Principal{Admin: true}, Daily, Request{}); err != nil {
		t.Fatal(err)
	}
	if d := fr.rng.To.Sub(fr.rng.From); d != 31*24*time.Hour { // 30 days widened to whole days
		t.Fatalf("daily default span %s", d)
	}
	if _, err := q.Top(ctx, Principal{UserID: "usr_1"}, ByUser, Request{}); err != nil {
		t.Fatal(err)
	}
	if fr.filter.UserID != "usr_1" || fr.topLimit != 100 || fr.rng.To.Sub(fr.rng.From) != 25*time.Hour {
		t.Fatalf("top: filter %+v limit %d range %s", fr.filter, fr.topLimit, fr.rng.To.Sub(fr.rng.From))
	}
	if _, err := q.Summary(ctx, Principal{Admin: true}, Request{}); err != nil {
		t.Fatal(err)
	}
	if !fr.rng.To.Equal(now) || fr.rng.To.Sub(fr.rng.From) != 24*time.Hour {
		t.Fatalf("summary range is exact: %+v", fr.rng)
	}
}

func TestParseSortKey(t *testing.T) {
	for in, want := range map[string]SortKey{"": SortRequests, "requests": SortRequests, "tokens": SortTokens, "errors": SortErrors} {
		if got, err := ParseSortKey(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	if _, err := ParseSortKey("latency; DROP"); apperr.ReasonOf(err) != apperr.ReasonInvalidArgument {
		t.Fatal(err)
	}
}

package server_test

import (
	"fmt"
	"math"
	"sort"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/log-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/log-service/internal/loadgen"
)

// statsFixture is 600 requests spread over two UTC days and several hours.
func statsFixture() []biz.Record {
	recs := loadgen.Records("stats", 600)
	for i := range recs {
		recs[i].CreatedAt = loadgen.Base.Add(time.Duration(i) * 20 * time.Second) // 10:00 … 13:19:40
		if i%50 == 0 {
			recs[i].CreatedAt = loadgen.Base.Add(-24*time.Hour + time.Duration(i)*time.Minute) // the day before
		}
	}
	return recs
}

// expect computes totals in Go, independently of ClickHouse.
func expect(recs []biz.Record, keep func(biz.Record) bool) biz.Totals {
	var t biz.Totals
	for _, r := range recs {
		if !keep(r) {
			continue
		}
		t.Requests++
		if r.StatusCode >= 400 {
			t.Errors++
		}
		if r.StatusCode >= 500 {
			t.ServerErrors++
		}
		t.PromptTokens += uint64(r.PromptTokens)
		t.CompletionTokens += uint64(r.CompletionTokens)
		t.CachedTokens += uint64(r.CachedTokens)
		t.CacheWriteTokens += uint64(r.CacheWriteTokens)
		t.ReasoningTokens += uint64(r.ReasoningTokens)
		t.LatencyMsSum += uint64(r.LatencyMs)
		if r.TTFBMs > 0 {
			t.TTFBMsSum += uint64(r.TTFBMs)
			t.TTFBCount++
		}
	}
	t.Derive()
	return t
}

// exactQuantile is the documented definition: the value at rank
// floor(level·n) of the sorted sample (ClickHouse quantileExact).
func exactQuantile(v []uint64, level float64) uint64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]uint64(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	idx := int(level * float64(len(s)))
	if idx >= len(s) {
		idx = len(s) - 1
	}
	return s[idx]
}

func sameTotals(t *testing.T, what string, got, want biz.Totals) {
	t.Helper()
	if math.Abs(got.ErrorRate-want.ErrorRate) > 1e-12 || math.Abs(got.AvgLatencyMs-want.AvgLatencyMs) > 1e-9 ||
		math.Abs(got.AvgTTFBMs-want.AvgTTFBMs) > 1e-9 {
		t.Fatalf("%s: derived figures\n got %+v\nwant %+v", what, got, want)
	}
	got.ErrorRate, got.AvgLatencyMs, got.AvgTTFBMs = want.ErrorRate, want.AvgLatencyMs, want.AvgTTFBMs
	if got != want {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func between(from, to time.Time) func(biz.Record) bool {
	return func(r biz.Record) bool { return !r.CreatedAt.Before(from) && r.CreatedAt.Before(to) }
}

// TestStatsMatchIndependentComputation checks every stats route against
// figures computed here from the fixture.
func TestStatsMatchIndependentComputation(t *testing.T) {
	e := newEnv(t)
	recs := statsFixture()
	e.insert(t, recs)

	t.Run("summary", func(t *testing.T) {
		// An exact range that cuts hours: the summary is not rounded.
		from, to := loadgen.Base.Add(17*time.Minute+20*time.Second), loadgen.Base.Add(2*time.Hour+41*time.Minute)
		for _, tc := range []struct {
			name  string
			extra []string
			keep  func(biz.Record) bool
		}{
			{"all", nil, func(biz.Record) bool { return true }},
			{"model", []string{"model", "gpt-4o-mini"}, func(r biz.Record) bool { return r.Model == "gpt-4o-mini" }},
			{"5xx streams of one key", []string{"status_class", "5xx", "stream", "false", "key_id", "key_3"},
				func(r biz.Record) bool { return r.StatusCode >= 500 && !r.Stream && r.KeyID == "key_3" }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var got biz.Summary
				e.get(t, "/api/v1/stats/summary"+q(append([]string{"from", rfc(from), "to", rfc(to)}, tc.extra...)...), adminToken, &got)
				in := between(from, to)
				keep := func(r biz.Record) bool { return in(r) && tc.keep(r) }
				want := expect(recs, keep)
				if want.Requests == 0 {
					t.Fatal("fixture selects nothing")
				}
				sameTotals(t, "summary", got.Totals, want)
				var lat, ttfb []uint64
				for _, r := range recs {
					if keep(r) {
						lat = append(lat, uint64(r.LatencyMs))
						if r.TTFBMs > 0 {
							ttfb = append(ttfb, uint64(r.TTFBMs))
						}
					}
				}
				l := biz.QuantileLevels
				wantLat := biz.Percentiles{P50: exactQuantile(lat, l[0]), P95: exactQuantile(lat, l[1]), P99: exactQuantile(lat, l[2])}
				wantTTFB := biz.Percentiles{P50: exactQuantile(ttfb, l[0]), P95: exactQuantile(ttfb, l[1]), P99: exactQuantile(ttfb, l[2])}
				if got.LatencyMs != wantLat || got.TTFBMs != wantTTFB {
					t.Fatalf("percentiles: latency %+v want %+v; ttfb %+v want %+v", got.LatencyMs, wantLat, got.TTFBMs, wantTTFB)
				}
				if !got.From.Equal(from) || !got.To.Equal(to) {
					t.Fatalf("range echoed as %s..%s", got.From, got.To)
				}
			})
		}
	})

	t.Run("hourly", func(t *testing.T) {
		from, to := loadgen.Base.Add(30*time.Minute), loadgen.Base.Add(3*time.Hour+10*time.Minute)
		var got biz.Series
		e.get(t, "/api/v1/stats/hourly"+q("from", rfc(from), "to", rfc(to), "provider_id", "prv_1"), adminToken, &got)
		if len(got.Items) != 4 || got.Granularity != "hour" || !got.From.Equal(loadgen.Base) {
			t.Fatalf("series %s..%s with %d buckets", got.From, got.To, len(got.Items))
		}
		for _, b := range got.Items {
			want := expect(recs, func(r biz.Record) bool {
				return r.ProviderID == "prv_1" && r.CreatedAt.Truncate(time.Hour).Equal(b.Start)
			})
			sameTotals(t, "hour "+b.Start.String(), b.Totals, want)
		}
	})

	t.Run("daily", func(t *testing.T) {
		var got biz.Series
		e.get(t, "/api/v1/stats/daily"+q("from", rfc(loadgen.Base.Add(-36*time.Hour)), "to", rfc(loadgen.Base.Add(time.Hour))), adminToken, &got)
		if len(got.Items) != 3 || got.Granularity != "day" {
			t.Fatalf("daily: %+v", got)
		}
		var total uint64
		for _, b := range got.Items {
			day := b.Start
			want := expect(recs, func(r biz.Record) bool {
				y1, m1, d1 := r.CreatedAt.Date()
				y2, m2, d2 := day.Date()
				return y1 == y2 && m1 == m2 && d1 == d2
			})
			sameTotals(t, "day "+day.Format(time.DateOnly), b.Totals, want)
			total += b.Requests
		}
		if total != 600 {
			t.Fatalf("daily total %d", total)
		}
	})

	// Top-N routes, over whole hours (the range is widened to them).
	from, to := loadgen.Base.Add(-24*time.Hour), loadgen.Base.Add(4*time.Hour)
	window := []string{"from", rfc(from), "to", rfc(to)}
	for _, tc := range []struct {
		route string
		key   func(biz.Record) string
	}{
		{"models", func(r biz.Record) string { return r.Model }},
		{"providers", func(r biz.Record) string { return r.ProviderID }},
		{"users", func(r biz.Record) string { return r.UserID }},
	} {
		for _, sortKey := range []string{"requests", "tokens", "errors"} {
			t.Run(tc.route+"/"+sortKey, func(t *testing.T) {
				groups := map[string]biz.Totals{}
				for _, r := range recs {
					k := tc.key(r)
					groups[k] = expect(recs, func(x biz.Record) bool { return tc.key(x) == k })
				}
				keys := make([]string, 0, len(groups))
				for k := range groups {
					keys = append(keys, k)
				}
				metric := func(t biz.Totals) uint64 {
					switch sortKey {
					case "tokens":
						return t.TotalTokens
					case "errors":
						return t.Errors
					}
					return t.Requests
				}
				sort.Slice(keys, func(i, j int) bool {
					a, b := metric(groups[keys[i]]), metric(groups[keys[j]])
					return a > b || a == b && keys[i] < keys[j]
				})
				limit := 2
				var got biz.Top
				e.get(t, fmt.Sprintf("/api/v1/stats/%s%s", tc.route, q(append(window, "sort", sortKey, "limit", fmt.Sprint(limit))...)), adminToken, &got)
				if len(got.Items) != limit || got.Sort != sortKey {
					t.Fatalf("got %d items sorted by %s", len(got.Items), got.Sort)
				}
				for i, it := range got.Items {
					if it.Key != keys[i] {
						t.Fatalf("rank %d is %s, want %s (order %v)", i, it.Key, keys[i], keys)
					}
					sameTotals(t, it.Key, it.Totals, groups[keys[i]])
				}
			})
		}
	}
}

package biz

import (
	"context"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// QuantileLevels are the latency percentiles Summary reports. They are
// computed exactly (ClickHouse quantilesExact: the value at rank
// floor(level·n) of the sorted sample), so they carry no approximation
// error; the cost is memory proportional to the rows in the range.
var QuantileLevels = [3]float64{0.5, 0.95, 0.99}

// Totals are the additive figures of a set of requests, and the rates and
// averages derived from them (Derive).
type Totals struct {
	Requests         uint64  `json:"requests"`
	Errors           uint64  `json:"errors"`        // status >= 400
	ServerErrors     uint64  `json:"server_errors"` // status >= 500
	ErrorRate        float64 `json:"error_rate"`    // errors / requests
	PromptTokens     uint64  `json:"prompt_tokens"`
	CompletionTokens uint64  `json:"completion_tokens"`
	CachedTokens     uint64  `json:"cached_tokens"`
	CacheWriteTokens uint64  `json:"cache_write_tokens"`
	ReasoningTokens  uint64  `json:"reasoning_tokens"`
	TotalTokens      uint64  `json:"total_tokens"` // prompt + completion (which include cached and reasoning)
	LatencyMsSum     uint64  `json:"latency_ms_sum"`
	AvgLatencyMs     float64 `json:"avg_latency_ms"`
	TTFBMsSum        uint64  `json:"ttfb_ms_sum"`
	TTFBCount        uint64  `json:"ttfb_count"` // requests that sent a first byte
	AvgTTFBMs        float64 `json:"avg_ttfb_ms"`
}

// Derive fills the fields computed from the sums.
func (t *Totals) Derive() {
	t.TotalTokens = t.PromptTokens + t.CompletionTokens
	t.ErrorRate, t.AvgLatencyMs, t.AvgTTFBMs = 0, 0, 0
	if t.Requests > 0 {
		t.ErrorRate = float64(t.Errors) / float64(t.Requests)
		t.AvgLatencyMs = float64(t.LatencyMsSum) / float64(t.Requests)
	}
	if t.TTFBCount > 0 {
		t.AvgTTFBMs = float64(t.TTFBMsSum) / float64(t.TTFBCount)
	}
}

// Percentiles are p50, p95 and p99 of a duration in milliseconds.
type Percentiles struct {
	P50 uint64 `json:"p50"`
	P95 uint64 `json:"p95"`
	P99 uint64 `json:"p99"`
}

// Summary is GET /api/v1/stats/summary: totals and percentiles over an
// exact range, from request_log.
type Summary struct {
	Range
	Totals
	LatencyMs Percentiles `json:"latency_ms"`
	// TTFBMs covers the requests that sent a first byte.
	TTFBMs Percentiles `json:"ttfb_ms"`
}

// Granularity is the bucket size of a time series.
type Granularity int

// The granularities, each backed by its rollup table.
const (
	Hourly Granularity = iota + 1
	Daily
)

// Step is the bucket length.
func (g Granularity) Step() time.Duration {
	if g == Daily {
		return 24 * time.Hour
	}
	return time.Hour
}

// String names g in responses.
func (g Granularity) String() string {
	if g == Daily {
		return "day"
	}
	return "hour"
}

// Bucket is one point of a time series.
type Bucket struct {
	Start time.Time `json:"start"`
	Totals
}

// Series is GET /api/v1/stats/hourly and /daily: one bucket per hour or
// UTC day of the range (empty ones included, as zeros). The range is
// widened to whole buckets.
type Series struct {
	Range
	Granularity string   `json:"granularity"`
	Items       []Bucket `json:"items"`
}

// Dimension is what a top-N groups by.
type Dimension int

// The dimensions of the rollups.
const (
	ByModel Dimension = iota + 1
	ByProvider
	ByUser
)

// String names d in responses.
func (d Dimension) String() string {
	switch d {
	case ByProvider:
		return "provider_id"
	case ByUser:
		return "user_id"
	default:
		return "model"
	}
}

// SortKey orders a top-N.
type SortKey int

// The sort keys, largest first.
const (
	SortRequests SortKey = iota // the default
	SortTokens
	SortErrors
)

// ParseSortKey maps "requests", "tokens", "errors" ("" is requests).
func ParseSortKey(s string) (SortKey, error) {
	switch s {
	case "", "requests":
		return SortRequests, nil
	case "tokens":
		return SortTokens, nil
	case "errors":
		return SortErrors, nil
	}
	return 0, apperr.New(apperr.ReasonInvalidArgument, "sort must be requests, tokens or errors")
}

// String names k in responses.
func (k SortKey) String() string {
	switch k {
	case SortTokens:
		return "tokens"
	case SortErrors:
		return "errors"
	default:
		return "requests"
	}
}

// TopRow is one group of a top-N.
type TopRow struct {
	Key string `json:"key"`
	Totals
}

// Top is GET /api/v1/stats/{models,providers,users}. The range is widened
// to whole hours (the hourly rollup answers it).
type Top struct {
	Range
	By    string   `json:"by"`
	Sort  string   `json:"sort"`
	Items []TopRow `json:"items"`
}

// Summary returns totals and percentiles over the exact range (default:
// the last DefaultRange).
func (q *Queries) Summary(ctx context.Context, p Principal, req Request) (Summary, error) {
	f, r, err := q.scoped(p, req, q.limits.DefaultRange)
	if err != nil {
		return Summary{}, err
	}
	s, err := q.reader.Summary(ctx, f, r)
	if err != nil {
		return Summary{}, err
	}
	s.Range = r
	s.Totals.Derive()
	return s, nil
}

// Series returns the hourly or daily time series of the range (default:
// the last DefaultRange, or 30 days for daily).
func (q *Queries) Series(ctx context.Context, p Principal, g Granularity, req Request) (Series, error) {
	f, r, err := q.rollupScope(p, req, g)
	if err != nil {
		return Series{}, err
	}
	rows, err := q.reader.Buckets(ctx, g, f, r)
	if err != nil {
		return Series{}, err
	}
	byStart := make(map[int64]Totals, len(rows))
	for _, b := range rows {
		byStart[b.Start.Unix()] = b.Totals
	}
	s := Series{Range: r, Granularity: g.String(), Items: make([]Bucket, 0, int(r.To.Sub(r.From)/g.Step()))}
	for t := r.From; t.Before(r.To); t = t.Add(g.Step()) {
		tot := byStart[t.Unix()]
		tot.Derive()
		s.Items = append(s.Items, Bucket{Start: t, Totals: tot})
	}
	return s, nil
}

// Top returns the largest groups by d over the range (default: the last
// DefaultRange).
func (q *Queries) Top(ctx context.Context, p Principal, d Dimension, req Request) (Top, error) {
	f, r, err := q.rollupScope(p, req, Hourly)
	if err != nil {
		return Top{}, err
	}
	limit, err := q.limit(req.Limit)
	if err != nil {
		return Top{}, err
	}
	rows, err := q.reader.Top(ctx, d, f, r, req.Sort, limit)
	if err != nil {
		return Top{}, err
	}
	for i := range rows {
		rows[i].Totals.Derive()
	}
	if rows == nil {
		rows = []TopRow{}
	}
	return Top{Range: r, By: d.String(), Sort: req.Sort.String(), Items: rows}, nil
}

// dailyDefaultRange is the default span of the daily series.
const dailyDefaultRange = 30 * 24 * time.Hour

// rollupScope validates a request for a rollup-backed route and widens its
// range to whole buckets of g.
func (q *Queries) rollupScope(p Principal, req Request, g Granularity) (Filter, Range, error) {
	if req.Filter.rawOnly() {
		return Filter{}, Range{}, apperr.New(apperr.ReasonInvalidArgument,
			"key_id, status_class and stream filter only /api/v1/logs and /api/v1/stats/summary")
	}
	span := q.limits.DefaultRange
	if g == Daily {
		span = min(dailyDefaultRange, q.limits.MaxRange)
	}
	f, r, err := q.scoped(p, req, span)
	if err != nil {
		return Filter{}, Range{}, err
	}
	return f, Align(r, g.Step()), nil
}

// Align widens r to whole steps (UTC): From down, To up.
func Align(r Range, step time.Duration) Range {
	from := r.From.UTC().Truncate(step)
	to := r.To.UTC().Truncate(step)
	if to.Before(r.To) {
		to = to.Add(step)
	}
	return Range{From: from, To: to}
}

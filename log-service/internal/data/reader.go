package data

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/lurus-switch/lurus-switch/log-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// storedRow is a request_log row in the column types of the table, for
// ScanStruct.
type storedRow struct {
	CreatedAt        time.Time `ch:"created_at"`
	RequestID        string    `ch:"request_id"`
	TraceID          string    `ch:"trace_id"`
	UserID           string    `ch:"user_id"`
	KeyID            string    `ch:"key_id"`
	Model            string    `ch:"model"`
	UpstreamModel    string    `ch:"upstream_model"`
	ProviderID       string    `ch:"provider_id"`
	APIFormat        string    `ch:"api_format"`
	UpstreamFormat   string    `ch:"upstream_format"`
	Endpoint         string    `ch:"endpoint"`
	Stream           uint8     `ch:"stream"`
	StatusCode       uint16    `ch:"status_code"`
	ErrorReason      string    `ch:"error_reason"`
	Attempts         uint16    `ch:"attempts"`
	LatencyMs        uint32    `ch:"latency_ms"`
	TTFBMs           uint32    `ch:"ttfb_ms"`
	PromptTokens     uint64    `ch:"prompt_tokens"`
	CompletionTokens uint64    `ch:"completion_tokens"`
	CachedTokens     uint64    `ch:"cached_tokens"`
	CacheWriteTokens uint64    `ch:"cache_write_tokens"`
	ReasoningTokens  uint64    `ch:"reasoning_tokens"`
	UsageSource      string    `ch:"usage_source"`
	ClientIP         string    `ch:"client_ip"`
	UserAgent        string    `ch:"user_agent"`
	InsertedAt       time.Time `ch:"inserted_at"`
}

func (r *storedRow) entry() biz.Entry {
	return biz.Entry{Record: biz.Record{
		RequestID: r.RequestID, TraceID: r.TraceID, UserID: r.UserID, KeyID: r.KeyID,
		Model: r.Model, UpstreamModel: r.UpstreamModel, ProviderID: r.ProviderID,
		APIFormat: r.APIFormat, UpstreamFormat: r.UpstreamFormat, Endpoint: r.Endpoint, Stream: r.Stream != 0,
		StatusCode: int(r.StatusCode), ErrorReason: r.ErrorReason, Attempts: int(r.Attempts),
		LatencyMs: int64(r.LatencyMs), TTFBMs: int64(r.TTFBMs),
		PromptTokens: int64(r.PromptTokens), CompletionTokens: int64(r.CompletionTokens),
		CachedTokens: int64(r.CachedTokens), CacheWriteTokens: int64(r.CacheWriteTokens),
		ReasoningTokens: int64(r.ReasoningTokens), UsageSource: r.UsageSource,
		ClientIP: r.ClientIP, UserAgent: r.UserAgent, CreatedAt: r.CreatedAt.UTC(),
	}, InsertedAt: r.InsertedAt.UTC()}
}

// selectColumns reads every column of request_log.
var selectColumns = func() string {
	names := make([]string, 0, len(insertColumns)+1)
	for _, c := range insertColumns {
		names = append(names, c.name)
	}
	return strings.Join(append(names, "inserted_at"), ", ")
}()

// where collects the conditions and arguments of a query. Conditions are
// constant SQL text with ? placeholders; values only ever travel as
// arguments.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) String() string { return strings.Join(w.conds, " AND ") }

// filter adds the conditions of f. The rollups have user_id, model and
// provider_id too, so the same code serves both; biz refuses the other
// filters on rollup routes.
func (w *where) filter(f biz.Filter) {
	if f.UserID != "" {
		w.add("user_id = ?", f.UserID)
	}
	if f.KeyID != "" {
		w.add("key_id = ?", f.KeyID)
	}
	if f.Model != "" {
		w.add("model = ?", f.Model)
	}
	if f.ProviderID != "" {
		w.add("provider_id = ?", f.ProviderID)
	}
	if f.StatusClass != 0 {
		w.add("status_code >= ? AND status_code < ?", f.StatusClass*100, f.StatusClass*100+100)
	}
	if f.Stream != nil {
		w.add("stream = ?", boolUInt8(*f.Stream))
	}
}

// rawRange restricts request_log to [r.From, r.To).
func (w *where) rawRange(r biz.Range) {
	w.add("created_at >= toDateTime(?) AND created_at < toDateTime(?)", r.From.Unix(), r.To.Unix())
}

// List implements biz.LogReader. LIMIT 1 BY request_id keeps a page free of
// repeats even if a duplicate row ever reached the table.
func (s *Store) List(ctx context.Context, q biz.ListQuery) ([]biz.Entry, error) {
	var w where
	w.rawRange(q.Range)
	w.filter(q.Filter)
	if q.After != nil {
		t := q.After.CreatedAt.Unix()
		w.add("(created_at < toDateTime(?) OR (created_at = toDateTime(?) AND request_id < ?))", t, t, q.After.RequestID)
	}
	sql := "SELECT " + selectColumns + " FROM request_log WHERE " + w.String() +
		" ORDER BY created_at DESC, request_id DESC LIMIT 1 BY request_id LIMIT ?"
	return s.entries(ctx, sql, append(w.args, q.Limit)...)
}

// Get implements biz.LogReader.
func (s *Store) Get(ctx context.Context, requestID string, within *biz.Range) (biz.Entry, error) {
	var w where
	w.add("request_id = ?", requestID)
	if within != nil {
		w.rawRange(*within)
	}
	out, err := s.entries(ctx, "SELECT "+selectColumns+" FROM request_log WHERE "+w.String()+" LIMIT 1", w.args...)
	if err != nil {
		return biz.Entry{}, err
	}
	if len(out) == 0 {
		return biz.Entry{}, apperr.New(apperr.ReasonLogNotFound, "no log for request "+requestID)
	}
	return out[0], nil
}

func (s *Store) entries(ctx context.Context, sql string, args ...any) ([]biz.Entry, error) {
	var out []biz.Entry
	err := s.scanRows(ctx, "read request_log", sql, args, func(rows driver.Rows) error {
		var r storedRow
		if err := rows.ScanStruct(&r); err != nil {
			return err
		}
		out = append(out, r.entry())
		return nil
	})
	return out, err
}

// rawTotals aggregates request_log rows into biz.Totals order (see
// totalsDest); rollupTotals does the same over a rollup table.
const (
	rawTotals = "count(), countIf(status_code >= 400), countIf(status_code >= 500), " +
		"sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens), sum(cache_write_tokens), sum(reasoning_tokens), " +
		"sum(toUInt64(latency_ms)), sum(toUInt64(ttfb_ms)), countIf(ttfb_ms > 0)"
	rollupTotals = "sum(requests), sum(errors), sum(server_errors), " +
		"sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens), sum(cache_write_tokens), sum(reasoning_tokens), " +
		"sum(latency_ms_sum), sum(ttfb_ms_sum), sum(ttfb_count)"
)

// totalsDest returns scan targets for rawTotals / rollupTotals.
func totalsDest(t *biz.Totals) []any {
	return []any{&t.Requests, &t.Errors, &t.ServerErrors,
		&t.PromptTokens, &t.CompletionTokens, &t.CachedTokens, &t.CacheWriteTokens, &t.ReasoningTokens,
		&t.LatencyMsSum, &t.TTFBMsSum, &t.TTFBCount}
}

// quantiles are biz.QuantileLevels as SQL text (constants, not input).
var quantiles = fmt.Sprintf("%g, %g, %g", biz.QuantileLevels[0], biz.QuantileLevels[1], biz.QuantileLevels[2])

// Summary implements biz.LogReader with exact percentiles (quantilesExact).
func (s *Store) Summary(ctx context.Context, f biz.Filter, r biz.Range) (biz.Summary, error) {
	var w where
	w.rawRange(r)
	w.filter(f)
	sql := "SELECT " + rawTotals + ", quantilesExact(" + quantiles + ")(latency_ms), " +
		"quantilesExactIf(" + quantiles + ")(ttfb_ms, ttfb_ms > 0) FROM request_log WHERE " + w.String()
	var out biz.Summary
	var lat, ttfb []uint32
	dest := append(totalsDest(&out.Totals), &lat, &ttfb)
	if err := s.conn.QueryRow(ctx, sql, w.args...).Scan(dest...); err != nil {
		return biz.Summary{}, mapErr(err, "summary")
	}
	out.LatencyMs, out.TTFBMs = percentiles(lat), percentiles(ttfb)
	return out, nil
}

func percentiles(v []uint32) biz.Percentiles {
	if len(v) != len(biz.QuantileLevels) {
		return biz.Percentiles{}
	}
	return biz.Percentiles{P50: uint64(v[0]), P95: uint64(v[1]), P99: uint64(v[2])}
}

// Buckets implements biz.LogReader from request_log_hourly or
// request_log_daily.
func (s *Store) Buckets(ctx context.Context, g biz.Granularity, f biz.Filter, r biz.Range) ([]biz.Bucket, error) {
	var w where
	var sql string
	if g == biz.Daily {
		w.add("day >= toDate(?) AND day < toDate(?)", r.From.UTC().Format(time.DateOnly), r.To.UTC().Format(time.DateOnly))
		w.filter(f)
		sql = "SELECT day, " + rollupTotals + " FROM request_log_daily WHERE " + w.String() + " GROUP BY day ORDER BY day"
	} else {
		w.add("hour >= toDateTime(?) AND hour < toDateTime(?)", r.From.Unix(), r.To.Unix())
		w.filter(f)
		sql = "SELECT hour, " + rollupTotals + " FROM request_log_hourly WHERE " + w.String() + " GROUP BY hour ORDER BY hour"
	}
	var out []biz.Bucket
	err := s.scanRows(ctx, "hourly/daily stats", sql, w.args, func(rows driver.Rows) error {
		var b biz.Bucket
		var start time.Time
		if err := rows.Scan(append([]any{&start}, totalsDest(&b.Totals)...)...); err != nil {
			return err
		}
		// A Date scans as midnight in the server's zone; rebuild it in UTC.
		b.Start = time.Date(start.Year(), start.Month(), start.Day(), start.Hour(), 0, 0, 0, time.UTC)
		out = append(out, b)
		return nil
	})
	return out, err
}

// dimensionColumn maps a biz.Dimension to its rollup column.
var dimensionColumn = map[biz.Dimension]string{biz.ByModel: "model", biz.ByProvider: "provider_id", biz.ByUser: "user_id"}

// sortExpr maps a biz.SortKey to its ORDER BY expression.
var sortExpr = map[biz.SortKey]string{
	biz.SortRequests: "sum(requests)",
	biz.SortTokens:   "sum(prompt_tokens) + sum(completion_tokens)",
	biz.SortErrors:   "sum(errors)",
}

// Top implements biz.LogReader from request_log_hourly.
func (s *Store) Top(ctx context.Context, d biz.Dimension, f biz.Filter, r biz.Range, sort biz.SortKey, limit int) ([]biz.TopRow, error) {
	dim, ok1 := dimensionColumn[d]
	order, ok2 := sortExpr[sort]
	if !ok1 || !ok2 {
		return nil, apperr.Internal(fmt.Errorf("top: unknown dimension %d or sort %d", d, sort))
	}
	var w where
	w.add("hour >= toDateTime(?) AND hour < toDateTime(?)", r.From.Unix(), r.To.Unix())
	w.filter(f)
	sql := "SELECT " + dim + ", " + rollupTotals + " FROM request_log_hourly WHERE " + w.String() +
		" GROUP BY " + dim + " ORDER BY " + order + " DESC, " + dim + " ASC LIMIT ?"
	var out []biz.TopRow
	err := s.scanRows(ctx, "top stats", sql, append(w.args, limit), func(rows driver.Rows) error {
		var t biz.TopRow
		if err := rows.Scan(append([]any{&t.Key}, totalsDest(&t.Totals)...)...); err != nil {
			return err
		}
		out = append(out, t)
		return nil
	})
	return out, err
}

// scanRows runs a query and calls each for every row; what names the
// query in errors.
func (s *Store) scanRows(ctx context.Context, what, sql string, args []any, each func(driver.Rows) error) error {
	rows, err := s.conn.Query(ctx, sql, args...)
	if err != nil {
		return mapErr(err, what)
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return apperr.Internal(fmt.Errorf("clickhouse: scan %s: %w", what, err))
		}
	}
	if err := rows.Err(); err != nil {
		return mapErr(err, what)
	}
	return nil
}

package data

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// A block inserted into request_log reaches the rollups through the
// materialized views, each of which writes its own part after the
// request_log part is committed. A ClickHouse that dies in between (found
// by the fault suite's scenario 11: SIGKILL under load) keeps the rows and
// loses their rollup counts; the retry then finds the rows stored and
// inserts nothing, so without a repair the rollups stay short for good.

// rollup is one table a view fills from request_log, keyed by a time
// bucket, user_id, model and provider_id.
type rollup struct {
	table  string
	bucket string        // its time column
	of     string        // the bucket of a request_log row (as in its view)
	bound  string        // a bucket from a bound argument (seconds)
	width  time.Duration // the bucket's length
}

var rollups = []rollup{
	{table: "request_log_hourly", bucket: "hour", of: "toStartOfHour(created_at)", bound: "toDateTime(?)", width: time.Hour},
	{table: "request_log_daily", bucket: "day", of: "toDate(created_at, 'UTC')", bound: "toDate(toDateTime(?), 'UTC')", width: 24 * time.Hour},
}

// rollupValues are the summed columns of both rollups with their
// aggregate over request_log, as clickhouse-init.sql's views compute them
// (TestRepairRollups compares every column with the views' own result).
var rollupValues = [][2]string{
	{"requests", "count()"},
	{"errors", "countIf(status_code >= 400)"},
	{"server_errors", "countIf(status_code >= 500)"},
	{"prompt_tokens", "sum(prompt_tokens)"},
	{"completion_tokens", "sum(completion_tokens)"},
	{"cached_tokens", "sum(cached_tokens)"},
	{"cache_write_tokens", "sum(cache_write_tokens)"},
	{"reasoning_tokens", "sum(reasoning_tokens)"},
	{"latency_ms_sum", "sum(toUInt64(latency_ms))"},
	{"ttfb_ms_sum", "sum(toUInt64(ttfb_ms))"},
	{"ttfb_count", "countIf(ttfb_ms > 0)"},
}

// repairSQL inserts, for every key of the buckets in [?, ?) whose rollup
// counts fewer requests than request_log holds, the difference of every
// column. A rollup is never ahead of request_log (the views write after
// it), so a key where some column would go negative (rows TTL'd away
// before their rollup) is left alone.
func (r rollup) repairSQL() string {
	keys := r.bucket + ", user_id, model, provider_id"
	var cols, diffs, raw, summed, cond []string
	for i, v := range rollupValues {
		cols = append(cols, v[0])
		diffs = append(diffs, fmt.Sprintf("toUInt64(%s - r_%s)", v[0], v[0]))
		raw = append(raw, v[1]+" AS "+v[0])
		summed = append(summed, fmt.Sprintf("sum(%s) AS r_%s", v[0], v[0]))
		op := ">="
		if i == 0 {
			op = ">"
		}
		cond = append(cond, fmt.Sprintf("%s %s r_%s", v[0], op, v[0]))
	}
	return "INSERT INTO " + r.table + " (" + keys + ", " + strings.Join(cols, ", ") + ")" +
		" SELECT " + keys + ", " + strings.Join(diffs, ", ") +
		" FROM (SELECT " + r.of + " AS " + r.bucket + ", user_id, model, provider_id, " + strings.Join(raw, ", ") +
		" FROM request_log WHERE created_at >= toDateTime(?) AND created_at < toDateTime(?) GROUP BY " + keys + ")" +
		" ANY LEFT JOIN (SELECT " + keys + ", " + strings.Join(summed, ", ") +
		" FROM " + r.table + " WHERE " + r.bucket + " >= " + r.bound + " AND " + r.bucket + " < " + r.bound +
		" GROUP BY " + keys + ") USING (" + keys + ")" +
		" WHERE " + strings.Join(cond, " AND ")
}

// RepairRollups adds to the rollups what request_log holds for the
// buckets overlapping [from, to] and they lack (biz.RollupRepairer). It
// must not run while another insert into those buckets is between its
// request_log part and its views' parts, or that insert is counted twice:
// the Ingester runs it under the lock its inserts take.
func (s *Store) RepairRollups(ctx context.Context, from, to time.Time) error {
	for _, r := range rollups {
		lo := from.UTC().Truncate(r.width)
		hi := to.UTC().Truncate(r.width).Add(r.width)
		if err := s.conn.Exec(ctx, r.repairSQL(), lo.Unix(), hi.Unix(), lo.Unix(), hi.Unix()); err != nil {
			return mapErr(err, "repair "+r.table)
		}
	}
	return nil
}

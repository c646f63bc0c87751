package data

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/lurus-switch/lurus-switch/log-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// Store is request_log and its rollups on ClickHouse: biz.RecordStore and
// biz.LogReader.
type Store struct {
	conn driver.Conn
}

// NewStore returns a Store on conn, whose default database holds the
// schema.
func NewStore(conn driver.Conn) *Store { return &Store{conn: conn} }

// Ping checks that ClickHouse answers.
func (s *Store) Ping(ctx context.Context) error { return s.conn.Ping(ctx) }

// insertColumn is one column of request_log as the insert fills it.
type insertColumn struct {
	name string
	fill func(driver.BatchColumn, []biz.Record) error
}

// col builds an insertColumn whose values are get(record).
func col[T any](name string, get func(*biz.Record) T) insertColumn {
	return insertColumn{name: name, fill: func(c driver.BatchColumn, rows []biz.Record) error {
		vals := make([]T, len(rows))
		for i := range rows {
			vals[i] = get(&rows[i])
		}
		return c.Append(vals)
	}}
}

// insertColumns are every column of request_log but inserted_at (the
// server's default), in the order of the INSERT statement.
var insertColumns = []insertColumn{
	col("created_at", func(r *biz.Record) time.Time { return r.CreatedAt.UTC() }),
	col("request_id", func(r *biz.Record) string { return r.RequestID }),
	col("trace_id", func(r *biz.Record) string { return r.TraceID }),
	col("user_id", func(r *biz.Record) string { return r.UserID }),
	col("key_id", func(r *biz.Record) string { return r.KeyID }),
	col("model", func(r *biz.Record) string { return r.Model }),
	col("upstream_model", func(r *biz.Record) string { return r.UpstreamModel }),
	col("provider_id", func(r *biz.Record) string { return r.ProviderID }),
	col("api_format", func(r *biz.Record) string { return r.APIFormat }),
	col("upstream_format", func(r *biz.Record) string { return r.UpstreamFormat }),
	col("endpoint", func(r *biz.Record) string { return r.Endpoint }),
	col("stream", func(r *biz.Record) uint8 { return boolUInt8(r.Stream) }),
	col("status_code", func(r *biz.Record) uint16 { return uint16(r.StatusCode) }),
	col("error_reason", func(r *biz.Record) string { return r.ErrorReason }),
	col("attempts", func(r *biz.Record) uint16 { return uint16(r.Attempts) }),
	col("latency_ms", func(r *biz.Record) uint32 { return uint32(r.LatencyMs) }),
	col("ttfb_ms", func(r *biz.Record) uint32 { return uint32(r.TTFBMs) }),
	col("prompt_tokens", func(r *biz.Record) uint64 { return uint64(r.PromptTokens) }),
	col("completion_tokens", func(r *biz.Record) uint64 { return uint64(r.CompletionTokens) }),
	col("cached_tokens", func(r *biz.Record) uint64 { return uint64(r.CachedTokens) }),
	col("cache_write_tokens", func(r *biz.Record) uint64 { return uint64(r.CacheWriteTokens) }),
	col("reasoning_tokens", func(r *biz.Record) uint64 { return uint64(r.ReasoningTokens) }),
	col("usage_source", func(r *biz.Record) string { return r.UsageSource }),
	col("client_ip", func(r *biz.Record) string { return r.ClientIP }),
	col("user_agent", func(r *biz.Record) string { return r.UserAgent }),
}

// insertSQL is the INSERT with its explicit column list (DESIGN.md §6).
var insertSQL = func() string {
	names := make([]string, len(insertColumns))
	for i, c := range insertColumns {
		names[i] = c.name
	}
	return "INSERT INTO request_log (" + strings.Join(names, ", ") + ")"
}()

func boolUInt8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// Insert writes rows as one block; ClickHouse commits a block atomically.
// The rows must be valid (biz.Record.Validate keeps them inside the column
// types).
func (s *Store) Insert(ctx context.Context, rows []biz.Record) error {
	if len(rows) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, insertSQL)
	if err != nil {
		return mapErr(err, "prepare insert")
	}
	for i, c := range insertColumns {
		if err := c.fill(b.Column(i), rows); err != nil {
			_ = b.Abort()
			return fmt.Errorf("insert column %s: %w", c.name, err)
		}
	}
	if err := b.Send(); err != nil {
		return mapErr(err, "insert")
	}
	return nil
}

// ExistingIDs returns which of ids have a row with created_at in [from, to]
// (seconds, inclusive). The ids travel as an external table (a data block
// beside the query, which the server neither parses as SQL nor limits by
// max_query_size), so a batch of any size is one query.
func (s *Store) ExistingIDs(ctx context.Context, from, to time.Time, ids []string) (map[string]bool, error) {
	found := make(map[string]bool)
	if len(ids) == 0 {
		return found, nil
	}
	tbl, err := ext.NewTable("batch_ids", ext.Column("request_id", "String"))
	if err != nil {
		return nil, apperr.Internal(err)
	}
	for _, id := range ids {
		if err := tbl.Append(id); err != nil {
			return nil, apperr.Internal(err)
		}
	}
	err = s.scanRows(clickhouse.Context(ctx, clickhouse.WithExternalTable(tbl)), "look up stored request ids",
		"SELECT request_id FROM request_log WHERE created_at >= toDateTime(?) AND created_at <= toDateTime(?) AND request_id IN batch_ids",
		[]any{from.Unix(), to.Unix()}, func(rows driver.Rows) error {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			found[id] = true
			return nil
		})
	if err != nil {
		return nil, err
	}
	return found, nil
}

// mapErr turns a ClickHouse error into an apperr: a server exception is an
// internal fault (a bug in a query or the schema), anything else (refused,
// reset, timed out) means the store is unavailable.
func mapErr(err error, what string) error {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return apperr.Internal(fmt.Errorf("clickhouse: %s: %w", what, err))
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return apperr.Wrap(err, apperr.ReasonDependencyDown, "log store did not answer in time")
	}
	return apperr.Wrap(fmt.Errorf("clickhouse: %s: %w", what, err), apperr.ReasonDependencyDown, "log store unavailable")
}

package data_test

import (
	"context"
	"strings"
	"testing"
	"time"

	logservice "github.com/lurus-switch/lurus-switch/log-service"
	"github.com/lurus-switch/lurus-switch/log-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/log-service/internal/data"
	"github.com/lurus-switch/lurus-switch/log-service/internal/loadgen"
	"github.com/lurus-switch/lurus-switch/log-service/internal/logtest"
)

// upstreamFormatDef is the line that added request_log.upstream_format;
// without it the script is the schema deployed before that column.
const upstreamFormatDef = "    upstream_format     String DEFAULT '',\n"

func oldSchema(t *testing.T) string {
	t.Helper()
	old := strings.Replace(logservice.ClickHouseDDL, upstreamFormatDef, "", 1)
	if old == logservice.ClickHouseDDL {
		t.Fatalf("clickhouse-init.sql has no line %q", upstreamFormatDef)
	}
	return old
}

func TestTableColumns(t *testing.T) {
	var found bool
	for _, s := range data.Statements(logservice.ClickHouseDDL) {
		table, cols, ok, err := data.TableColumns(s)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		if !ok || table != "request_log" {
			continue
		}
		found = true
		if len(cols) != 26 {
			t.Fatalf("request_log has %d columns, want 26: %+v", len(cols), cols)
		}
		for i, want := range map[int]string{
			0:  "created_at DateTime('UTC')",
			8:  "api_format String",
			9:  "upstream_format String DEFAULT ''",
			10: "endpoint String",
			25: "inserted_at DateTime('UTC') DEFAULT now()",
		} {
			if cols[i].Def != want {
				t.Errorf("column %d = %q, want %q", i, cols[i].Def, want)
			}
		}
	}
	if !found {
		t.Fatal("no CREATE TABLE request_log in the script")
	}

	_, cols, ok, err := data.TableColumns("CREATE TABLE IF NOT EXISTS t (a Decimal(10, 2), b String DEFAULT 'x, (y', c UInt8) ENGINE = Log")
	if !ok || err != nil || len(cols) != 3 || cols[1].Name != "b" || cols[1].Def != "b String DEFAULT 'x, (y'" || cols[2].Def != "c UInt8" {
		t.Fatalf("nested commas: %+v %v %v", cols, ok, err)
	}
	if _, _, ok, _ := data.TableColumns("CREATE MATERIALIZED VIEW IF NOT EXISTS v TO t AS SELECT 1"); ok {
		t.Fatal("a view read as a table")
	}
	if _, _, _, err := data.TableColumns("CREATE TABLE IF NOT EXISTS t (a String"); err == nil {
		t.Fatal("an unclosed column list was accepted")
	}
	if _, _, _, err := data.TableColumns("CREATE TABLE IF NOT EXISTS t (a String, , b String)"); err == nil {
		t.Fatal("an empty column definition was accepted")
	}
}

// TestMigrateAddsUpstreamFormat runs migrate on a database deployed with
// the schema before request_log.upstream_format: the column is added in
// its place, stored rows stay and read it as "", new rows store it, the
// table ends up as a fresh one, and a second run changes nothing.
func TestMigrateAddsUpstreamFormat(t *testing.T) {
	old := logtest.ClickHouseWith(t, oldSchema(t))
	ctx := context.Background()
	if hasColumn(t, old, "request_log", "upstream_format") {
		t.Fatal("the old schema already has upstream_format")
	}
	// Rows as the previous release wrote them: its column list has no
	// upstream_format.
	prev := loadgen.Records("old", 10)
	b, err := old.Conn.PrepareBatch(ctx, "INSERT INTO request_log (created_at, request_id, user_id, model, provider_id, api_format, status_code, prompt_tokens)")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range prev {
		if err := b.Append(r.CreatedAt, r.RequestID, r.UserID, r.Model, r.ProviderID, r.APIFormat, uint16(r.StatusCode), uint64(r.PromptTokens)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	// This release cannot write to the old table: migrate is required.
	if err := old.Store.Insert(ctx, loadgen.Records("early", 1)); err == nil {
		t.Fatal("insert with upstream_format succeeded on the old table")
	}

	res, err := data.Migrate(ctx, old.Conf, "", logservice.ClickHouseDDL, data.Retention{RawDays: 180}, nil)
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if strings.Join(res.AddedColumns, ",") != "request_log.upstream_format" {
		t.Fatalf("added %q, want request_log.upstream_format", res.AddedColumns)
	}
	if n := old.Count(t, "request_log"); n != 10 {
		t.Fatalf("rows after migrate = %d, want 10", n)
	}
	if n := old.SumRequests(t, "request_log_hourly"); n != 10 {
		t.Fatalf("hourly requests after migrate = %d, want 10", n)
	}
	r := biz.Range{From: loadgen.Base, To: loadgen.Base.Add(time.Hour)}
	items, err := old.Store.List(ctx, biz.ListQuery{Range: r, Limit: 100})
	if err != nil || len(items) != 10 {
		t.Fatalf("list old rows: %d, %v", len(items), err)
	}
	for _, e := range items {
		want := byID(prev, e.RequestID)
		if e.UpstreamFormat != "" || e.APIFormat != want.APIFormat || e.PromptTokens != want.PromptTokens || !e.CreatedAt.Equal(want.CreatedAt) {
			t.Fatalf("old row after migrate: %+v, want api_format %q, prompt_tokens %d, upstream_format \"\"", e.Record, want.APIFormat, want.PromptTokens)
		}
	}

	recs := loadgen.Records("new", 6)
	if recs[1].UpstreamFormat == "" || recs[1].UpstreamFormat == recs[1].APIFormat {
		t.Fatalf("fixture record 1 is not translated: %+v", recs[1])
	}
	if err := old.Store.Insert(ctx, recs); err != nil {
		t.Fatalf("insert after migrate: %v", err)
	}
	for _, want := range recs {
		e, err := old.Store.Get(ctx, want.RequestID, nil)
		if err != nil || e.Record != want {
			t.Fatalf("round trip after migrate:\n got %+v (%v)\nwant %+v", e.Record, err, want)
		}
	}

	migrated := describe(t, old, "request_log")
	if fresh := describe(t, logtest.ClickHouse(t), "request_log"); migrated != fresh {
		t.Fatalf("migrated request_log differs from a fresh one:\nmigrated:\n%s\nfresh:\n%s", migrated, fresh)
	}

	res, err = data.Migrate(ctx, old.Conf, "", logservice.ClickHouseDDL, data.Retention{RawDays: 180}, nil)
	if err != nil || len(res.AddedColumns) != 0 || res.Statements != 6 {
		t.Fatalf("second migrate: %+v %v", res, err)
	}
	if again := describe(t, old, "request_log"); again != migrated {
		t.Fatalf("second migrate changed request_log:\n%s", again)
	}
	if n := old.Count(t, "request_log"); n != 16 {
		t.Fatalf("rows after the second migrate = %d, want 16", n)
	}
}

func hasColumn(t *testing.T, db logtest.DB, table, column string) bool {
	t.Helper()
	return strings.Contains("\n"+describe(t, db, table), "\n"+column+"\t")
}

// describe returns DESCRIBE TABLE as tab-separated lines, in column order.
func describe(t *testing.T, db logtest.DB, table string) string {
	t.Helper()
	rows, err := db.Conn.Query(context.Background(), "DESCRIBE TABLE "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		cells := make([]string, len(rows.Columns()))
		dest := make([]any, len(cells))
		for i := range cells {
			dest[i] = &cells[i]
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Join(cells, "\t"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, "\n")
}

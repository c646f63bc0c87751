package data_test

import (
	"context"
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/log-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/log-service/internal/loadgen"
	"github.com/lurus-switch/lurus-switch/log-service/internal/logtest"
)

// TestRepairRollups: rows stored while the views did not run (as when
// ClickHouse dies between request_log's part and the views' parts; the
// chaos suite's scenario 11 found it) are added to the rollups by
// RepairRollups exactly as the views would have added them; a repair
// where nothing is missing, or a second one, changes nothing.
func TestRepairRollups(t *testing.T) {
	ctx := context.Background()
	db := logtest.ClickHouse(t)
	ref := logtest.ClickHouse(t) // the same rows, all through the views
	// Records are a second apart: these span several hours.
	seen, lost := loadgen.Records("seen", 3000), loadgen.Records("lost", 5000)
	all := append(append([]biz.Record{}, seen...), lost...)
	if err := db.Store.Insert(ctx, seen); err != nil {
		t.Fatal(err)
	}
	before := rollupRows(t, db, "request_log_hourly")
	if err := db.Store.RepairRollups(ctx, seen[0].CreatedAt, seen[len(seen)-1].CreatedAt); err != nil {
		t.Fatal(err)
	}
	if after := rollupRows(t, db, "request_log_hourly"); after != before {
		t.Fatalf("a repair with nothing missing changed the rollup:\n%s\n---\n%s", before, after)
	}

	for _, v := range []string{"request_log_hourly_mv", "request_log_daily_mv"} {
		exec(t, db, "DETACH TABLE "+v)
	}
	if err := db.Store.Insert(ctx, lost); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"request_log_hourly_mv", "request_log_daily_mv"} {
		exec(t, db, "ATTACH TABLE "+v)
	}
	if n := db.SumRequests(t, "request_log_hourly"); n != uint64(len(seen)) {
		t.Fatalf("hourly counts %d before the repair, want %d (the lost rows missing)", n, len(seen))
	}
	for range 2 {
		if err := db.Store.RepairRollups(ctx, lost[0].CreatedAt, lost[len(lost)-1].CreatedAt); err != nil {
			t.Fatal(err)
		}
	}

	if err := ref.Store.Insert(ctx, all); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"request_log_hourly", "request_log_daily"} {
		got, want := rollupRows(t, db, table), rollupRows(t, ref, table)
		if got != want {
			t.Errorf("%s after the repair:\n%s\nwant (through the views):\n%s", table, got, want)
		}
	}
	if n := db.SumRequests(t, "request_log_hourly"); n != uint64(len(all)) {
		t.Errorf("hourly counts %d requests, want %d", n, len(all))
	}
}

func exec(t *testing.T, db logtest.DB, sql string) {
	t.Helper()
	if err := db.Conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// rollupRows renders every column of a rollup, summed per key (its first
// four columns), one line per key in key order.
func rollupRows(t *testing.T, db logtest.DB, table string) string {
	t.Helper()
	ctx := context.Background()
	rows, err := db.Conn.Query(ctx, "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = ?", table)
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	rows.Close()
	if len(cols) < 5 {
		t.Fatalf("%s has columns %v", table, cols)
	}
	keys := strings.Join(cols[:4], ", ")
	parts := make([]string, 0, len(cols))
	for i, c := range cols {
		if i < 4 {
			parts = append(parts, "toString("+c+")")
		} else {
			parts = append(parts, "toString(sum("+c+"))")
		}
	}
	rows, err = db.Conn.Query(ctx, "SELECT concat("+strings.Join(parts, ", '|', ")+") FROM "+table+" GROUP BY "+keys+" ORDER BY "+keys)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		b.WriteString(line + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

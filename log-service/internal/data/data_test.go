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
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

func TestStatements(t *testing.T) {
	stmts := data.Statements(logservice.ClickHouseDDL)
	if len(stmts) != 7 {
		t.Fatalf("got %d statements, want 7 (database, use, 5 tables/views)", len(stmts))
	}
	for _, s := range stmts {
		if strings.HasSuffix(s, ";") || strings.Contains(s, "--") {
			t.Errorf("statement not cleaned: %q", s)
		}
		if strings.Contains(s, "DateTime64") || strings.Contains(s, " TTL ") || strings.Contains(s, "LowCardinality") {
			t.Errorf("statement uses what 18.16 lacks: %.80q", s)
		}
	}
	if got := data.Statements("-- c\nA;\n\nB\n;\nC"); strings.Join(got, "|") != "A|B|C" {
		t.Fatalf("split = %q", got)
	}
}

func TestSupportsTTL(t *testing.T) {
	for _, tt := range []struct {
		major, minor uint64
		want         bool
	}{{18, 16, false}, {19, 5, false}, {19, 6, true}, {20, 1, true}, {24, 8, true}} {
		if got := data.SupportsTTL(tt.major, tt.minor); got != tt.want {
			t.Errorf("SupportsTTL(%d.%d) = %v", tt.major, tt.minor, got)
		}
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	db := logtest.ClickHouse(t)
	ctx := context.Background()
	res, err := data.Migrate(ctx, db.Conf, "", logservice.ClickHouseDDL, data.Retention{RawDays: 180, HourlyDays: 400}, nil)
	if err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if res.Statements != 6 || res.Server == "" || len(res.AddedColumns) != 0 {
		t.Fatalf("result %+v", res)
	}
	rows, err := db.Conn.Query(ctx, "SELECT name FROM system.tables WHERE database = ? ORDER BY name", db.Conf.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	want := "request_log request_log_daily request_log_daily_mv request_log_hourly request_log_hourly_mv"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("tables = %q, want %q", got, want)
	}
}

func TestInsertAndExistingIDs(t *testing.T) {
	db := logtest.ClickHouse(t)
	ctx := context.Background()
	recs := loadgen.Records("ins", 20)
	recs[5].UserAgent = `quote ' backslash \ and "double" ` + "\x00 nul"
	if err := db.Store.Insert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if n := db.Count(t, "request_log"); n != 20 {
		t.Fatalf("rows = %d", n)
	}
	if n := db.SumRequests(t, "request_log_hourly"); n != 20 {
		t.Fatalf("hourly requests = %d", n)
	}
	if n := db.SumRequests(t, "request_log_daily"); n != 20 {
		t.Fatalf("daily requests = %d", n)
	}
	ids := []string{recs[0].RequestID, recs[19].RequestID, "req-ins-missing", "x' OR 1=1 --"}
	got, err := db.Store.ExistingIDs(ctx, recs[0].CreatedAt, recs[19].CreatedAt, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[recs[0].RequestID] || !got[recs[19].RequestID] {
		t.Fatalf("existing = %v", got)
	}
	// Outside the time span the same ids are not found: the key is (id, created_at).
	got, err = db.Store.ExistingIDs(ctx, recs[19].CreatedAt.Add(time.Second), recs[19].CreatedAt.Add(time.Hour), ids)
	if err != nil || len(got) != 0 {
		t.Fatalf("existing outside span = %v, %v", got, err)
	}
	e, err := db.Store.Get(ctx, recs[5].RequestID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.Record != recs[5] {
		t.Fatalf("round trip:\n got %+v\nwant %+v", e.Record, recs[5])
	}
	if e.InsertedAt.IsZero() {
		t.Fatal("inserted_at not set by the server")
	}
}

func TestExistingIDsManyChunks(t *testing.T) {
	db := logtest.ClickHouse(t)
	ctx := context.Background()
	recs := loadgen.Records("many", 12000)
	if err := db.Store.Insert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.RequestID
	}
	got, err := db.Store.ExistingIDs(ctx, recs[0].CreatedAt, recs[len(recs)-1].CreatedAt, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("found %d of %d", len(got), len(recs))
	}
}

func TestGetNotFound(t *testing.T) {
	db := logtest.ClickHouse(t)
	_, err := db.Store.Get(context.Background(), "nope", nil)
	if apperr.ReasonOf(err) != apperr.ReasonLogNotFound {
		t.Fatalf("err = %v", err)
	}
}

// TestListPagination walks every page with the keyset cursor: no row is
// skipped or repeated, and the order is newest first.
func TestListPagination(t *testing.T) {
	db := logtest.ClickHouse(t)
	ctx := context.Background()
	recs := loadgen.Records("page", 50)
	// Several rows in one second: the request id breaks the tie.
	for i := 10; i < 20; i++ {
		recs[i].CreatedAt = loadgen.Base.Add(10 * time.Second)
	}
	if err := db.Store.Insert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	q := biz.NewQueries(db.Store, biz.QueryLimits{MaxRange: 93 * 24 * time.Hour, DefaultRange: 24 * time.Hour, DefaultLimit: 100})
	limit := 7
	req := biz.Request{From: loadgen.Base, To: loadgen.Base.Add(time.Hour), Limit: &limit}
	var seen []string
	for pages := 0; pages < 20; pages++ {
		p, err := q.List(ctx, biz.Principal{Admin: true}, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Items {
			seen = append(seen, e.RequestID)
		}
		if p.NextCursor == nil {
			break
		}
		req.Cursor = *p.NextCursor
	}
	if len(seen) != 50 {
		t.Fatalf("saw %d rows, want 50", len(seen))
	}
	uniq := map[string]bool{}
	for i, id := range seen {
		if uniq[id] {
			t.Fatalf("row %s repeated", id)
		}
		uniq[id] = true
		if i > 0 {
			a, b := byID(recs, seen[i-1]), byID(recs, id)
			if a.CreatedAt.Before(b.CreatedAt) || a.CreatedAt.Equal(b.CreatedAt) && a.RequestID < b.RequestID {
				t.Fatalf("order broken at %d: %s before %s", i, a.RequestID, b.RequestID)
			}
		}
	}
}

func byID(recs []biz.Record, id string) biz.Record {
	for _, r := range recs {
		if r.RequestID == id {
			return r
		}
	}
	return biz.Record{}
}

// TestFiltersAreBoundNotSpliced feeds SQL-looking values through every
// filter: they match nothing and break nothing.
func TestFiltersAreBoundNotSpliced(t *testing.T) {
	db := logtest.ClickHouse(t)
	ctx := context.Background()
	if err := db.Store.Insert(ctx, loadgen.Records("inj", 10)); err != nil {
		t.Fatal(err)
	}
	r := biz.Range{From: loadgen.Base, To: loadgen.Base.Add(time.Hour)}
	for _, evil := range []string{"x' OR '1'='1", `\' OR 1=1 --`, "usr_0'; DROP TABLE request_log; --", "?", "@name", "$1"} {
		f := biz.Filter{UserID: evil, KeyID: evil, Model: evil, ProviderID: evil}
		for _, one := range []biz.Filter{{UserID: evil}, {KeyID: evil}, {Model: evil}, {ProviderID: evil}, f} {
			items, err := db.Store.List(ctx, biz.ListQuery{Filter: one, Range: r, Limit: 100})
			if err != nil {
				t.Fatalf("%q: %v", evil, err)
			}
			if len(items) != 0 {
				t.Fatalf("%q matched %d rows", evil, len(items))
			}
			s, err := db.Store.Summary(ctx, one, r)
			if err != nil || s.Requests != 0 {
				t.Fatalf("%q: summary %+v %v", evil, s.Totals, err)
			}
		}
	}
	if n := db.Count(t, "request_log"); n != 10 {
		t.Fatalf("rows = %d after injection attempts", n)
	}
}

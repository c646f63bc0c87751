package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/log-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/log-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/log-service/internal/loadgen"
	"github.com/lurus-switch/lurus-switch/log-service/internal/logtest"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

const testAdminToken = "app-test-admin-token"

// testConfig points the shipped config at this test's database and
// namespace, on a random port.
func testConfig(t *testing.T, db logtest.DB, ne testenv.NATSEnv) conf.Config {
	t.Setenv("LURUS_ADMIN_TOKEN", testAdminToken)
	t.Setenv("LURUS_INTERNAL_TOKEN", "app-test-internal-token")
	t.Setenv("LURUS_KEY_PEPPER", "app-test-key-pepper")
	t.Setenv("LURUS_CLICKHOUSE_ADDR", db.Conf.Addr)
	t.Setenv("LURUS_LOG_CLICKHOUSE_DB", db.Conf.Database)
	t.Setenv("LURUS_NATS_URL", ne.URL)
	t.Setenv("LURUS_NATS_NAMESPACE", ne.Namespace)
	t.Setenv("LURUS_LOG_ADDR", "127.0.0.1:0")
	t.Setenv("LURUS_LOG_BATCH_SIZE", "200")
	t.Setenv("LURUS_LOG_LEVEL", "warn")
	cfg, err := conf.Load("../../configs/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Messages prefetched by a stopped instance come back after AckWait;
	// keep that short here.
	cfg.Consumer.AckWait, cfg.Consumer.FlushTimeout = 4*time.Second, 3*time.Second
	return cfg
}

// started is an App running in the background.
type started struct {
	app  *App
	base string
	done chan error
}

func startApp(t *testing.T, cfg conf.Config) *started {
	t.Helper()
	app, cleanup, err := newApp(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	ep, err := app.HTTP.Endpoint()
	if err != nil {
		t.Fatal(err)
	}
	s := &started{app: app, base: "http://" + ep.Host, done: make(chan error, 1)}
	go func() { s.done <- app.Run() }()
	return s
}

// stop is what SIGTERM does: Kratos stops the HTTP server and drains the
// consumer.
func (s *started) stop(t *testing.T) {
	t.Helper()
	if err := s.app.Kratos.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("app did not stop")
	}
}

func (s *started) getJSON(t *testing.T, path string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s: %v in %s", path, err, raw)
		}
	}
	return resp.StatusCode
}

func waitRows(t *testing.T, s *started, want uint64) {
	t.Helper()
	path := "/api/v1/stats/summary?from=" + loadgen.Base.Add(-time.Hour).Format(time.RFC3339) + "&to=" + loadgen.Base.Add(24*time.Hour).Format(time.RFC3339)
	deadline := time.Now().Add(90 * time.Second)
	for {
		var sum biz.Summary
		status := s.getJSON(t, path, &sum)
		if status == http.StatusOK && sum.Requests == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("summary counts %d requests (status %d), want %d", sum.Requests, status, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServeEndToEnd runs the wired service: events published on NATS
// become queryable over HTTP; a stop mid-stream drains, and a restarted
// instance resumes without losing or repeating a row.
func TestServeEndToEnd(t *testing.T) {
	db := logtest.ClickHouse(t)
	ne := testenv.NATS(t)
	cfg := testConfig(t, db, ne)
	ctx := context.Background()
	subject := ne.Names.Subject(events.SubjectLogWrite)
	recs := loadgen.Records("app", 1500)

	s := startApp(t, cfg)
	if err := loadgen.Publish(ctx, ne.JS, subject, recs[:500], ""); err != nil {
		t.Fatal(err)
	}
	waitRows(t, s, 500)
	if status := s.getJSON(t, "/ready", nil); status != http.StatusOK {
		t.Fatalf("ready: %d", status)
	}
	// The counter moves just after the rows become visible.
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(s.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(metrics), `lurus_log_rows_ingested_total{source="nats"} 500`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics do not count 500 rows:\n%s", grep(string(metrics), "lurus_log_rows"))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Publish more and stop at once: whatever was handed out is committed
	// and acknowledged; the rest stays in JetStream.
	if err := loadgen.Publish(ctx, ne.JS, subject, recs[500:], ""); err != nil {
		t.Fatal(err)
	}
	s.stop(t)

	s2 := startApp(t, cfg)
	waitRows(t, s2, 1500)
	if n := db.Count(t, "request_log"); n != 1500 {
		t.Fatalf("request_log holds %d rows, want 1500", n)
	}
	var page biz.Page
	if status := s2.getJSON(t, "/api/v1/logs?limit=1&from="+loadgen.Base.Format(time.RFC3339)+"&to="+loadgen.Base.Add(24*time.Hour).Format(time.RFC3339), &page); status != 200 ||
		len(page.Items) != 1 || page.Items[0].RequestID != recs[1499].RequestID {
		t.Fatalf("newest log: %d %+v", status, page.Items)
	}
	s2.stop(t)
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRunCommands drives main's dispatcher: migrate applies the schema to
// the configured database; unknown commands and bad configs fail.
func TestRunCommands(t *testing.T) {
	db := logtest.ClickHouse(t)
	t.Setenv("LURUS_CLICKHOUSE_ADDR", db.Conf.Addr)
	t.Setenv("LURUS_LOG_CLICKHOUSE_DB", db.Conf.Database+"_m")
	t.Cleanup(func() { _ = db.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db.Conf.Database+"_m") })
	if code := run([]string{"migrate", "-config", "../../configs/config.yaml"}); code != 0 {
		t.Fatalf("migrate exited %d", code)
	}
	var n uint64
	if err := db.Conn.QueryRow(context.Background(), "SELECT count() FROM system.tables WHERE database = ?", db.Conf.Database+"_m").Scan(&n); err != nil || n != 5 {
		t.Fatalf("migrated database has %d tables (%v), want 5", n, err)
	}
	if code := run([]string{"bogus"}); code != 2 {
		t.Fatalf("unknown command exited %d", code)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("clickhouse:\n  database: \"no-dashes\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"migrate", "-config", bad}); code != 1 {
		t.Fatalf("invalid config exited %d", code)
	}
}

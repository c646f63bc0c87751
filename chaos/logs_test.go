package chaos

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

// Harness for the request log: a private ClickHouse, log-service as a real
// process reaching it through a fault proxy, and the invariant that
// ClickHouse counts each request once.

// logsDB is the ClickHouse database of the suite's log-service.
const logsDB = "lurus_logs"

// Timings of the suite's copy of log-service's config: a flush gives up
// after logFlushTimeout (the service's 20 s would make an insert timeout
// scenario last minutes), and a failed batch comes back within a second.
const (
	logFlushTimeout = "2s"
	logAckWait      = "6s"
	logBackoff      = "[250ms, 500ms, 1s]"
)

// logStack is the request-log part of a stack.
type logStack struct {
	// ClickHouse is the private clickhouse-server; CHAddr its native
	// address, which the checker uses directly.
	ClickHouse *proc
	CHAddr     string
	// CHProxy sits between log-service and ClickHouse: latency makes its
	// inserts time out, Cut makes ClickHouse unreachable.
	CHProxy *testenv.Proxy
	Service *proc
	URL     string
	// CH is a pool on the log database (the invariant checker's).
	CH driver.Conn
}

// clickhouseServer starts a private clickhouse-server from its own
// directory on its own ports (native and HTTP), never the shared 9000/8123.
// scripts/stack.sh writes its config (one copy of that rewrite). It is
// SIGKILLed when the test ends: its data is thrown away, and a clean
// shutdown takes seconds.
func clickhouseServer(t testing.TB, logDir string) (*proc, string) {
	t.Helper()
	bin := lookBin(t, "clickhouse-server", "/usr/sbin/clickhouse-server")
	dir := t.TempDir()
	addr, httpAddr := freeAddr(t), freeAddr(t)
	_, httpPort, _ := net.SplitHostPort(httpAddr)
	cmd := exec.Command("bash", filepath.Join(repoRoot, "scripts", "stack.sh"), "config", "clickhouse", dir)
	cmd.Env = append(cmd.Environ(), "LURUS_CLICKHOUSE_ADDR="+addr, "LURUS_CLICKHOUSE_HTTP_PORT="+httpPort)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("clickhouse config: %v\n%s", err, out)
	}
	p := newProc(t, logDir, "clickhouse-server", bin, dir, nil, "--config-file="+filepath.Join(dir, "config.xml"))
	p.Start()
	t.Cleanup(p.Kill) // runs before newProc's graceful Stop
	waitClickHouse(t, addr)
	return p, addr
}

// waitClickHouse waits until ClickHouse at addr answers a query.
func waitClickHouse(t testing.TB, addr string) {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var last error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		last = conn.Ping(ctx)
		cancel()
		if last == nil {
			return
		}
	}
	t.Fatalf("clickhouse at %s not answering: %v", addr, last)
}

// startLogs starts the private ClickHouse, migrates the log database and
// starts log-service on NATS and (through the fault proxy) ClickHouse.
func (s *stack) startLogs(common []string) {
	s.t.Helper()
	started := time.Now()
	l := &logStack{}
	l.ClickHouse, l.CHAddr = clickhouseServer(s.t, s.logDir)
	l.CHProxy = testenv.NewProxy(s.t, l.CHAddr)
	cfg := s.editedConfig("log-service", func(y string) string {
		for _, e := range [][2]string{
			{"flush_timeout: 20s", "flush_timeout: " + logFlushTimeout},
			{"ack_wait: 30s", "ack_wait: " + logAckWait},
			{"backoff: [1s, 2s, 5s, 10s, 30s]", "backoff: " + logBackoff},
		} {
			if !strings.Contains(y, e[0]) {
				s.t.Fatalf("log-service config has no %q to replace; update startLogs", e[0])
			}
			y = strings.Replace(y, e[0], e[1], 1)
		}
		return y
	})
	addr := freeAddr(s.t)
	l.URL = "http://" + addr
	env := append(append([]string{}, common...), "LURUS_LOG_ADDR="+addr, "LURUS_LOG_CLICKHOUSE_DB="+logsDB,
		"LURUS_BILLING_URL="+s.BillingURL)
	migrate := exec.Command(bins["log-service"], "migrate", "-config", cfg)
	migrate.Dir = filepath.Join(repoRoot, "log-service")
	migrate.Env = append(append(migrate.Environ(), env...), "LURUS_CLICKHOUSE_ADDR="+l.CHAddr)
	if out, err := migrate.CombinedOutput(); err != nil {
		s.t.Fatalf("log-service migrate: %v\n%s", err, out)
	}
	l.Service = newProc(s.t, s.logDir, "log-service", bins["log-service"], filepath.Join(repoRoot, "log-service"),
		append(env, "LURUS_CLICKHOUSE_ADDR="+l.CHProxy.Addr), "serve", "-config", cfg)
	l.Service.Start()
	s.waitReady(l.URL + "/ready")
	var err error
	l.CH, err = clickhouse.Open(&clickhouse.Options{Addr: []string{l.CHAddr}, Auth: clickhouse.Auth{Database: logsDB},
		DialTimeout: 2 * time.Second})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = l.CH.Close() })
	s.Logs = l
	s.t.Logf("request log (clickhouse-server, migrate, log-service) ready in %s", time.Since(started).Round(time.Millisecond))
}

// RestartClickHouse starts ClickHouse again after a kill and waits until it
// answers; it returns how long that took.
func (s *stack) RestartClickHouse() time.Duration {
	s.t.Helper()
	start := time.Now()
	s.Logs.ClickHouse.Start()
	waitClickHouse(s.t, s.Logs.CHAddr)
	return time.Since(start)
}

// logReport is what the request-log check measured.
type logReport struct {
	SettleWait time.Duration
	Rows       uint64 // rows in request_log
	// Redelivered counts deliveries of log-service's consumer beyond the
	// first of each message.
	Redelivered uint64
}

func (r logReport) String() string {
	return fmt.Sprintf("log rows %d settled after %s, %d log redeliveries", r.Rows,
		r.SettleWait.Round(10*time.Millisecond), r.Redelivered)
}

// checkLogCounts asserts that ClickHouse counts each request once, once
// log-service has drained log.write:
//
//   - every accepted request id has exactly one request_log row;
//   - no request id has more than one row (the gateway logs refused and
//     failed requests too, and its own model listings);
//   - no chat request has a row that no client saw;
//   - the hourly and daily rollups count as many requests as request_log
//     holds rows (a block inserted twice would count twice there too).
func checkLogCounts(ctx context.Context, s *stack, js jetstream.JetStream, accepted []string, seen map[string]bool) logReport {
	s.t.Helper()
	l := s.Logs
	var rep logReport
	names := events.NewNames("")
	start := time.Now()
	var last string
	for {
		var missing uint64
		// The ids travel as an external table: no query-size limit.
		tbl, err := ext.NewTable("accepted", ext.Column("request_id", "String"))
		if err != nil {
			s.t.Fatal(err)
		}
		for _, id := range accepted {
			if err := tbl.Append(id); err != nil {
				s.t.Fatal(err)
			}
		}
		err = l.CH.QueryRow(clickhouse.Context(ctx, clickhouse.WithExternalTable(tbl)),
			`SELECT count() FROM accepted WHERE request_id NOT IN (SELECT request_id FROM request_log)`).Scan(&missing)
		if err == nil {
			var c jetstream.Consumer
			if c, err = js.Consumer(ctx, names.Stream(events.StreamLogs), events.DurableLogs); err == nil {
				var ci *jetstream.ConsumerInfo
				if ci, err = c.Info(ctx); err == nil {
					rep.Redelivered = ci.Delivered.Consumer - ci.Delivered.Stream
					last = fmt.Sprintf("%d accepted ids not in request_log, log consumer pending %d, ack pending %d",
						missing, ci.NumPending, ci.NumAckPending)
					if missing == 0 && ci.NumPending == 0 && ci.NumAckPending == 0 {
						break
					}
				}
			}
		}
		if err != nil {
			last = err.Error()
		}
		if time.Since(start) > settleGrace {
			s.t.Fatalf("invariant: request log not settled within %s: %s", settleGrace, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rep.SettleWait = time.Since(start)

	rows, err := l.CH.Query(ctx, `SELECT request_id, count() AS n FROM request_log GROUP BY request_id HAVING n > 1 ORDER BY n DESC LIMIT 20`)
	if err != nil {
		s.t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var n uint64
		if err := rows.Scan(&id, &n); err != nil {
			s.t.Fatal(err)
		}
		s.t.Errorf("invariant: request %s has %d request_log rows", id, n)
	}
	if err := rows.Err(); err != nil {
		s.t.Fatal(err)
	}
	rows.Close()

	if err := l.CH.QueryRow(ctx, `SELECT count() FROM request_log`).Scan(&rep.Rows); err != nil {
		s.t.Fatal(err)
	}
	// No row for a chat request no client saw (the setup's model listings
	// are logged too).
	rows, err = l.CH.Query(ctx, `SELECT request_id, endpoint, status_code, toString(created_at), toString(inserted_at)
		FROM request_log WHERE endpoint != 'models'`)
	if err != nil {
		s.t.Fatal(err)
	}
	phantoms := 0
	for rows.Next() {
		var id, endpoint, created, inserted string
		var status uint16
		if err := rows.Scan(&id, &endpoint, &status, &created, &inserted); err != nil {
			s.t.Fatal(err)
		}
		if !seen[id] {
			if phantoms++; phantoms <= 5 {
				s.t.Errorf("invariant: request_log row for request %s (%s %d, created %s, inserted %s) that no client saw",
					id, endpoint, status, created, inserted)
			}
		}
	}
	if err := rows.Err(); err != nil {
		s.t.Fatal(err)
	}
	rows.Close()
	if phantoms > 5 {
		s.t.Errorf("invariant: %d request_log rows for requests no client saw", phantoms)
	}
	for _, rollup := range []string{"request_log_hourly", "request_log_daily"} {
		var n uint64
		if err := l.CH.QueryRow(ctx, `SELECT toUInt64(sum(requests)) FROM `+rollup).Scan(&n); err != nil {
			s.t.Fatal(err)
		}
		if n != rep.Rows {
			s.t.Errorf("invariant: %s counts %d requests, request_log holds %d rows", rollup, n, rep.Rows)
		}
	}
	return rep
}

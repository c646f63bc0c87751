package chaos

import (
	"math/rand/v2"
	"testing"
	"time"
)

// Scenario 11: under steady load, log-service's inserts into ClickHouse
// time out (the fault proxy between them holds every byte for a while, so
// some inserts reach ClickHouse and commit while log-service has already
// given up on them), then ClickHouse is unreachable (proxy cut), then
// ClickHouse itself is SIGKILLed and restarted, several times. Every
// request must still be counted exactly once in request_log and in its
// hourly and daily rollups, and billed exactly once.
//
// Found by this scenario: a SIGKILL between the commit of a request_log
// block and the commits of its materialized views' blocks left the
// rollups short for good (the retry found the rows stored and dropped
// them as duplicates); log-service now repairs the rollups when a retry
// finds its records stored (data.Store.RepairRollups, TestRepairRollups).
func TestClickHouseTimeoutsAndRestarts(t *testing.T) {
	s := startStack(t, stackOptions{Logs: true, MockArgs: []string{"-usage", "prompt=1,completion=20", "-latency-ms", "5"}})
	tn := s.setup(tenantOptions{TopupMicros: 50_000_000})
	kills := envInt("CHAOS_CLICKHOUSE_KILLS", 3)
	l := s.Logs
	metric := func(name string) float64 { return scrapeMetric(l.URL+"/metrics", name+`{source="nats"}`) }

	tr := newTraffic()
	load := startLoad(s.GatewayURLs, tn.Key, 20, 4, tr)
	time.Sleep(time.Second)

	// 1. Insert timeouts. A flush is a few round trips (duplicate check,
	// insert header, then data and its end); with flush_timeout 2 s and a
	// latency a little under a quarter of it, a flush times out after its
	// block left for ClickHouse but before it arrived. The moment a flush
	// fails the latency goes (the path heals): the retry's duplicate check
	// then overtakes the abandoned block, the sharpest case for counting
	// each request once. Longer latencies time flushes out before anything
	// is written.
	for _, d := range []time.Duration{420, 440, 460, 480, 500, 1500} {
		before := metric("lurus_log_insert_errors_total")
		l.CHProxy.SetLatency(d * time.Millisecond)
		for deadline := time.Now().Add(8 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if metric("lurus_log_insert_errors_total") > before {
				break
			}
		}
		l.CHProxy.SetLatency(0)
		time.Sleep(time.Second)
	}
	timeouts := metric("lurus_log_insert_errors_total")
	time.Sleep(time.Second)

	// 2. ClickHouse unreachable: connections refused and broken.
	l.CHProxy.Cut()
	time.Sleep(3 * time.Second)
	l.CHProxy.Restore()
	time.Sleep(time.Second)

	// 3. ClickHouse SIGKILLed at random points of the insert stream, down
	// for a moment each time, then started again on the same data.
	var restartMax time.Duration
	for i := 0; i < kills; i++ {
		time.Sleep(time.Duration(200+rand.IntN(800)) * time.Millisecond)
		l.ClickHouse.Kill()
		time.Sleep(time.Second)
		restartMax = max(restartMax, s.RestartClickHouse())
	}
	restarted := time.Now()
	s.waitReady(l.URL + "/ready")
	ready := time.Since(restarted)
	time.Sleep(time.Second) // traffic after the last restart
	load.stop()
	if tr.Accepted() == 0 {
		t.Fatalf("no request accepted: %v", tr.statuses)
	}

	rep := checkInvariants(s, tr, 0)
	failed, dups := metric("lurus_log_insert_errors_total"), metric("lurus_log_duplicates_dropped_total")
	t.Logf("RESULT scenario=11 requests=%d accepted=%d statuses=%v transport_errors=%d latency_flush_failures=%.0f flush_failures=%.0f duplicates_dropped=%.0f clickhouse_kills=%d clickhouse_restart_max=%s log_ready_after_restart=%s %s",
		tr.Total(), tr.Accepted(), tr.statuses, tr.errors, timeouts, failed, dups, kills, restartMax.Round(time.Millisecond),
		ready.Round(time.Millisecond), rep)
	if timeouts <= 0 {
		t.Errorf("no flush failed while ClickHouse was slow (lurus_log_insert_errors_total %.0f): the latency did not land", timeouts)
	}
	if failed <= timeouts {
		t.Errorf("no flush failed while ClickHouse was cut or killed (%.0f failures, %.0f of them while slow)", failed, timeouts)
	}
	// The gateway's answers do not depend on ClickHouse.
	if got := tr.Accepted(); got != tr.Total() {
		t.Errorf("%d of %d requests failed while only ClickHouse was hurt: %v, %d transport errors", tr.Total()-got, tr.Total(), tr.statuses, tr.errors)
	}
}

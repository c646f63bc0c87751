package chaos

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"
)

// Scenario 12: sync-service is restarted while 300 WebSocket clients (10
// devices of each of 30 users) follow their balances and requests keep
// being settled: once with SIGTERM (the server closes every socket with
// 1001) and once with SIGKILL (the sockets just break), each time staying
// down for a second of settlements. Every client reconnects and resumes
// from its last_event_id; none sees an event twice or misses a balance
// change (each balance.changed continues the balance before it), and once
// everything is settled every client's last pushed balance equals
// PostgreSQL. CHAOS_SYNC_CLIENTS sets the number of clients (default 300).
func TestSyncServiceRestartedWithClients(t *testing.T) {
	const perUser = 10
	users := max(1, envInt("CHAOS_SYNC_CLIENTS", 300)/perUser)
	s := startStack(t, stackOptions{
		MockArgs: []string{"-usage", "prompt=1,completion=20", "-latency-ms", "5"},
		Sync:     true,
		// Every client comes from 127.0.0.1: lift the per-address cap
		// (100) above the fleet.
		SyncConfig: replaceLine("max_per_ip: 100", "max_per_ip: 100000"),
	})
	tenants := []tenant{s.setup(tenantOptions{TopupMicros: 50_000_000})}
	for i := 1; i < users; i++ {
		tenants = append(tenants, s.addTenant(fmt.Sprintf("sync%d", i), 50_000_000))
	}
	fleet := startSyncFleet(s.SyncURL, tenants, perUser)
	t.Cleanup(fleet.stop)
	fleet.wait(t, 120*time.Second, "every client connected and has its state", 1)

	keys := make([]string, len(tenants))
	for i, tn := range tenants {
		keys[i] = tn.Key
	}
	tr := newTraffic()
	load := startLoadKeys(s.GatewayURLs, keys, 20, 2, tr)
	s.eventually(60*time.Second, "balance changes pushed to every client", func() bool { return fleet.minEvents() > 0 })

	var results []string
	restart := func(name string, fault func(), opens int) {
		settled := s.usageCount()
		downAt := time.Now()
		fault()
		time.Sleep(time.Second) // requests are settled while it is down: the resumes must replay them
		s.Sync.Start()
		s.waitReady(s.SyncURL + "/ready")
		upAt := time.Now()
		fleet.wait(t, 120*time.Second, name+": every client reconnected", opens)
		replayed, _ := metricValue(s.SyncURL, "lurus_sync_resumes_total", `result="replayed"`)
		stateResumes, _ := metricValue(s.SyncURL, "lurus_sync_resumes_total", `result="sync_state"`)
		results = append(results, fmt.Sprintf("%s: down=%s settled_while_down=%d all_reconnected_after_start=%s resumes_replayed=%.0f resumes_sync_state=%.0f",
			name, upAt.Sub(downAt).Round(time.Millisecond), s.usageCount()-settled, time.Since(upAt).Round(time.Millisecond), replayed, stateResumes))
	}
	restart("SIGTERM", func() {
		if err := s.Sync.Stop(30 * time.Second); err != nil {
			t.Error(err)
		}
	}, 2)
	restart("SIGKILL", s.Sync.Kill, 3)
	time.Sleep(500 * time.Millisecond) // settlements pushed after the last reconnect too
	load.stop()
	rep := checkInvariants(s, tr, 0)

	pg := map[string]int64{}
	for _, tn := range tenants {
		b, err := s.balance(tn.UserID)
		if err != nil {
			t.Fatal(err)
		}
		pg[tn.UserID] = b
	}
	var wrong []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		wrong = fleet.differing(pg)
		if len(wrong) == 0 || time.Now().After(deadline) {
			break
		}
	}
	st := fleet.stats()
	t.Logf("RESULT scenario=12 clients=%d users=%d requests=%d accepted=%d statuses=%v %s; balance_events_pushed=%d opens=%d resumes=%d upgrade_refusals=%v sync_states=%v duplicates=%d breaks=%d last_balance_wrong=%d %s",
		len(fleet.clients), len(tenants), tr.Total(), tr.Accepted(), tr.statuses, results, st.events, st.opens, st.resumes,
		st.refusals, st.states, st.dups, len(st.breaks), len(wrong), rep)
	if len(wrong) != 0 {
		t.Errorf("%d of %d clients' last pushed balance differs from PostgreSQL, e.g. %v", len(wrong), len(fleet.clients), wrong[:min(5, len(wrong))])
	}
	if st.dups != 0 {
		t.Errorf("%d events delivered twice to a client, e.g. %v", st.dups, st.dupInfo[:min(10, len(st.dupInfo))])
	}
	if len(st.breaks) != 0 {
		t.Errorf("%d balance changes missed (a balance.changed not continuing the one before), e.g. %v", len(st.breaks), st.breaks[:min(5, len(st.breaks))])
	}
	for _, code := range slices.Sorted(maps.Keys(st.refusals)) {
		if code == 401 || code == 403 {
			t.Errorf("%d reconnects refused %d", st.refusals[code], code)
		}
	}
	if want := 2 * len(fleet.clients); st.resumes < want {
		t.Errorf("%d resumes with last_event_id, want at least %d (every client, twice)", st.resumes, want)
	}
}

package chaos

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
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
		settled = s.usageCount() - settled
		fleet.wait(t, 120*time.Second, name+": every client reconnected", opens)
		replayed, _ := metricValue(s.SyncURL, "lurus_sync_resumes_total", `result="replayed"`)
		stateResumes, _ := metricValue(s.SyncURL, "lurus_sync_resumes_total", `result="sync_state"`)
		results = append(results, fmt.Sprintf("%s: down=%s settled_while_down=%d all_reconnected_after_start=%s resumes_replayed=%.0f resumes_sync_state=%.0f",
			name, upAt.Sub(downAt).Round(time.Millisecond), settled, time.Since(upAt).Round(time.Millisecond), replayed, stateResumes))
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

// Scenario 15: billing-service is SIGKILLed and restarted while the
// gateway's leases hold the estimates of requests it has not settled. A
// "tight" user whose requests are estimated at 16,000 µ but cost 41 µ
// (about 20 a second) gets blocked (402) while billing is down: nothing
// takes the estimates of its finished requests back out of the lease.
// After the restart the redelivered usages settle and release them; the
// test measures how long the user stayed blocked and asserts that no
// answer later than the lease TTL after billing was ready again is a
// refusal (CHAOS_LEASE_KILLS rounds, default 3). Last, the gateway is
// SIGKILLed with billing, its lease holding a remainder and the estimates
// of requests in flight whose usage it never publishes: those holds can
// only expire. Both users stay idle for over twice the TTL, then must be
// admitted, and the invariants' check that no hold is left covers what the
// dead leases held. A rich user keeps sending until then and is never
// refused.
func TestBillingKilledWhileLeasesHold(t *testing.T) {
	const (
		leaseTTL  = 5 * time.Second
		maxTokens = 8000      // estimate ≈ 16,000 µ; the mock bills 1 + 20 tokens = 41 µ
		topup     = 1_500_000 // some 90 unsettled estimates: 4-5 s of billing down
	)
	rounds := envInt("CHAOS_LEASE_KILLS", 3)
	s := startStack(t, stackOptions{
		MockArgs:      []string{"-usage", "prompt=1,completion=20", "-latency-ms", "5"},
		GatewayConfig: replaceLine("reservation_ttl: 10m", "reservation_ttl: 5s"),
	})
	rich := s.setup(tenantOptions{TopupMicros: 50_000_000})
	tight := s.addTenant("tight", topup)
	tr := newTraffic()
	richLoad := startTimedLoad(s.GatewayURLs, rich.Key, 20, 1, tr)
	tightLoad := startPacedLoad(s.GatewayURLs, tight.Key, maxTokens, 1, 50*time.Millisecond, tr)
	t.Cleanup(func() { richLoad.stop(); tightLoad.stop() })
	start := time.Now()

	var results []string
	for r := range rounds {
		s.eventually(60*time.Second, "the tight user is served before the kill", func() bool { return tightLoad.countOK(time.Now().Add(-time.Second)) > 0 })
		killAt := time.Now()
		s.Billing.Kill()
		var blockedAt time.Time
		s.eventually(60*time.Second, "the tight user is blocked while billing is down", func() bool {
			for _, a := range tightLoad.since(killAt) {
				if a.status == http.StatusPaymentRequired {
					blockedAt = a.at
					return true
				}
			}
			return false
		})
		time.Sleep(500 * time.Millisecond) // blocked for a while
		restart := s.RestartBilling()
		readyAt := time.Now()
		s.eventually(60*time.Second, "the tight user is admitted again", func() bool { return !tightLoad.firstOK(readyAt).IsZero() })
		unblocked := tightLoad.firstOK(readyAt)
		time.Sleep(time.Until(readyAt.Add(leaseTTL + time.Second)))
		late := answersBetween(tightLoad, readyAt.Add(leaseTTL), time.Now())
		if len(late) == 0 || len(late) != tally(late)["200"] {
			t.Errorf("round %d: the tight user's answers later than the lease TTL (%s) after billing was ready: %v", r+1, leaseTTL, tally(late))
		}
		results = append(results, fmt.Sprintf("round %d: blocked %s after the kill, billing restart %s, blocked_for=%s (%s after billing ready), tight_while_down=%v",
			r+1, blockedAt.Sub(killAt).Round(time.Millisecond), restart.Round(time.Millisecond), unblocked.Sub(blockedAt).Round(time.Millisecond),
			unblocked.Sub(readyAt).Round(time.Millisecond), tally(answersBetween(tightLoad, killAt, readyAt))))
	}

	// The gateway dies too, holding the tight user's lease. Answers it
	// gave whose usage was still in its memory are lost (scenario 14's
	// loss window): they leave the accepted set.
	killAt := time.Now()
	s.Billing.Kill()
	s.Gateways[0].Kill()
	tightLoad.stop()
	richLoad.stop()
	held := s.reserved(tight.UserID)
	lost := tr.keepOnly(s.storedIDs(events.StreamBilling), s.outboxIDs(0))
	s.RestartBilling()
	s.Gateways[0].Start()
	s.waitReady(s.GatewayURLs[0] + "/ready")
	time.Sleep(time.Until(killAt.Add(2*leaseTTL + time.Second))) // the tight user is idle past twice the TTL
	// Both users come back (an expired entry is purged by the next script
	// touching its user).
	var after []timedAnswer
	for i := range 10 {
		key, tokens := tight.Key, maxTokens
		if i%2 == 1 {
			key, tokens = rich.Key, 20
		}
		r := chat(s.GatewayURLs[0], key, tokens)
		tr.add(r)
		after = append(after, timedAnswer{at: time.Now(), status: r.Status, reason: errorReason(r.Body)})
	}
	if tally(after)["200"] != len(after) {
		t.Errorf("after the dead gateway's leases expired the users got %v", tally(after))
	}
	rep := checkInvariants(s, tr, 0)
	t.Logf("RESULT scenario=15 requests=%d accepted=%d statuses=%v lease_ttl=%s %v; gateway+billing killed: held_at_kill=%d µ, lost_in_gateway_memory=%d, after 2×TTL idle %v; rich_user=%v %s",
		tr.Total(), tr.Accepted(), tr.statuses, leaseTTL, results, held, lost, tally(after), tally(answersBetween(richLoad, start, killAt)), rep)
	var refused []timedAnswer
	for _, a := range answersBetween(richLoad, start, killAt) {
		if a.status/100 != 2 {
			refused = append(refused, a)
		}
	}
	if len(refused) != 0 {
		t.Errorf("the rich user was refused %d times before the gateway was killed: %v", len(refused), tally(refused))
	}
}

// reserved is what the Redis mirror holds for a user's reservations and
// leases (rmic), -1 when it cannot be read.
func (s *stack) reserved(userID string) int64 {
	rdb := redis.NewClient(&redis.Options{Addr: s.RedisAddr})
	defer rdb.Close()
	n, err := rdb.HGet(context.Background(), "lurus:adm:{"+userID+"}:acct", "rmic").Int64()
	if err != nil {
		return -1
	}
	return n
}

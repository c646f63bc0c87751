package chaos

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Scenario 8: clients hang up at a random chunk of their stream. Every
// such request is settled once (one usage row, one debit) with its
// usage_source set, and the gateway stops reading upstream within the
// drain bound (relay.drain_timeout) after the client went, even when the
// upstream would stream for far longer.
func TestClientsDisconnectMidStream(t *testing.T) {
	const (
		drain       = time.Second
		shortChunks = 20   // ends long before the drain bound
		longChunks  = 3000 // 30 s at 10 ms a chunk: far past it
		slack       = 5 * time.Second
	)
	requests := envInt("CHAOS_DISCONNECTS", 200)
	s := startStack(t, stackOptions{})
	s.restartGatewayWithConfig(0, map[string]string{"drain_timeout: 30s": "drain_timeout: " + drain.String()})
	to := upstreamTimeouts{ConnectMs: 2000, FirstByteMs: 5000, IdleMs: 5000, TotalMs: 60_000}
	s.mockScenario("s8-short", map[string]any{"chunks": shortChunks, "gap_ms": 5, "usage": map[string]int{"prompt": 3, "completion": shortChunks}})
	s.mockScenario("s8-long", map[string]any{"chunks": longChunks, "gap_ms": 10, "usage": map[string]int{"prompt": 3, "completion": longChunks}})
	s.mockProvider("s8-short", "m8-short", 0, to)
	s.mockProvider("s8-long", "m8-long", 0, to)
	tn := s.setup(tenantOptions{TopupMicros: 50_000_000})
	s.waitModels(tn.Key, "m8-short", "m8-long")

	tr := newTraffic()
	long := map[string]bool{}
	replies := runAll(requests, 20, func(i int) streamReply {
		model := "m8-short"
		if i%2 == 1 {
			model = "m8-long"
		}
		return chatModel(s.GatewayURLs[0], tn.Key, model, 4000, true, 1+rand.IntN(10))
	})
	lastHangUp := time.Now()
	var ids []string
	for i, r := range replies {
		if r.Err != nil || r.Status != http.StatusOK || r.RequestID == "" {
			t.Fatalf("request %d: status %d, id %q, err %v, body %s", i, r.Status, r.RequestID, r.Err, r.Body)
		}
		if r.Done {
			t.Errorf("request %d read to [DONE]: the client was meant to hang up after at most 10 chunks", i)
		}
		tr.add(r.reply)
		ids = append(ids, r.RequestID)
		long[r.RequestID] = i%2 == 1
	}

	// Drained within the bound: the long streams' upstream connections
	// are all closed about drain after their client went, though each
	// would run for 30 s.
	var drained time.Duration
	s.eventually(drain+slack, "the mock has no request in flight (upstream drained within the bound)", func() bool {
		drained = time.Since(lastHangUp)
		return s.mockInFlight() == 0
	})

	rep := checkInvariants(s, tr, 0)
	rows := s.usageRows(ids)
	sources, statuses := map[string]int{}, map[string]int{}
	for _, id := range ids {
		rs := rows[id]
		if len(rs) != 1 {
			t.Errorf("request %s has %d usage rows, want 1", id, len(rs))
			continue
		}
		u := rs[0]
		sources[u.Source]++
		statuses[u.Status]++
		switch {
		case u.Source != "upstream" && u.Source != "estimated":
			t.Errorf("request %s: usage_source %q, want upstream or estimated", id, u.Source)
		case u.Cost <= 0:
			t.Errorf("request %s: streamed output but cost %d", id, u.Cost)
		case long[id] && u.Completion >= longChunks:
			t.Errorf("request %s: %d completion tokens billed, the stream was abandoned well before its %d", id, u.Completion, longChunks)
		case !long[id] && u.Source == "upstream" && (u.Prompt != 3 || u.Completion != shortChunks):
			t.Errorf("request %s: upstream usage billed as %d+%d, mock sent 3+%d", id, u.Prompt, u.Completion, shortChunks)
		}
	}
	t.Logf("RESULT scenario=8 requests=%d drain_bound=%s upstream_released_after=%s usage_sources=%v outcome_statuses=%v %s",
		requests, drain, drained.Round(10*time.Millisecond), sources, statuses, rep)
}

// Scenario 9: upstream failure modes. Before the first byte (5xx, a hang
// at the first byte, 429) the gateway fails over to the next provider;
// after it (a cut, a hang mid-stream) it never does. Every request is
// charged at most once, exactly when the client got a 2xx, and the
// provider's small timeouts bound every hang.
func TestUpstreamFailureModes(t *testing.T) {
	const (
		n      = 4 // requests per mode, half of them streams
		bound  = 3 * time.Second
		slack  = 4 * time.Second
		okCost = 3*priceIn/1_000_000 + 5*priceOut/1_000_000 // 13 µ: the healthy provider's 3+5 tokens
	)
	s := startStack(t, stackOptions{})
	// The failover modes retry 3n times within seconds: more than the
	// default burst of retry credit (10), which scenario 10 covers.
	s.restartGatewayWithConfig(0, map[string]string{"retry_burst: 10": "retry_burst: 100"})
	to := upstreamTimeouts{ConnectMs: 1000, FirstByteMs: 500, IdleMs: 500, TotalMs: bound.Milliseconds()}

	type mode struct {
		name     string
		primary  map[string]any // the failing provider's mock scenario
		backup   bool           // a healthy provider of lower priority
		failover bool           // the backup must serve every request
	}
	modes := []mode{
		{name: "5xx", primary: map[string]any{"status": 503}, backup: true, failover: true},
		{name: "hang-first-byte", primary: map[string]any{"hang": "first_byte"}, backup: true, failover: true},
		{name: "429", primary: map[string]any{"status": 429}, backup: true, failover: true},
		{name: "cut", primary: map[string]any{"chunks": 10, "cut_after": 2}, backup: true},
		{name: "hang-mid", primary: map[string]any{"chunks": 10, "hang": "mid"}, backup: true},
		{name: "429-only", primary: map[string]any{"status": 429}},
		{name: "hang-only", primary: map[string]any{"hang": "first_byte"}},
		{name: "no-usage", primary: map[string]any{"no_usage": true}},
	}
	var models []string
	for _, m := range modes {
		s.mockScenario("p-"+m.name, m.primary)
		s.mockProvider("p-"+m.name, "m9-"+m.name, 10, to)
		if m.backup {
			s.mockScenario("b-"+m.name, map[string]any{"usage": map[string]int{"prompt": 3, "completion": 5}})
			s.mockProvider("b-"+m.name, "m9-"+m.name, 0, to)
		}
		models = append(models, "m9-"+m.name)
	}
	tn := s.setup(tenantOptions{TopupMicros: 50_000_000})
	s.waitModels(tn.Key, models...)

	tr := newTraffic()
	results := map[string][]streamReply{}
	for _, m := range modes {
		rs := runAll(n, n, func(i int) streamReply {
			return chatModel(s.GatewayURLs[0], tn.Key, "m9-"+m.name, 50, i%2 == 0, 0)
		})
		for _, r := range rs {
			tr.add(r.reply)
		}
		results[m.name] = rs
	}
	attempts := s.mockRequests()
	rep := checkInvariants(s, tr, 0)

	var ids []string
	for _, rs := range results {
		for _, r := range rs {
			if r.RequestID != "" {
				ids = append(ids, r.RequestID)
			}
		}
	}
	rows := s.usageRows(ids)
	charged := func(id string) (usageRow, bool) {
		for _, u := range rows[id] {
			if u.Cost > 0 {
				return u, true
			}
		}
		return usageRow{}, false
	}
	summary := []string{}
	for _, m := range modes {
		rs := results[m.name]
		primary, backup := attempts["p-"+m.name], attempts["b-"+m.name]
		statuses := map[int]int{}
		var slowest time.Duration
		for i, r := range rs {
			statuses[r.Status]++
			slowest = max(slowest, r.Elapsed)
			stream := i%2 == 0
			if r.Err != nil {
				t.Errorf("%s: request %d: %v", m.name, i, r.Err)
				continue
			}
			if r.Elapsed > bound+slack {
				t.Errorf("%s: request %d took %s; the provider's total timeout is %s", m.name, i, r.Elapsed, bound)
			}
			u, paid := charged(r.RequestID)
			if len(rows[r.RequestID]) > 1 {
				t.Errorf("%s: request %s has %d usage rows", m.name, r.RequestID, len(rows[r.RequestID]))
			}
			switch m.name {
			case "5xx", "hang-first-byte", "429":
				// Failed over before the first byte: a whole answer from
				// the backup, billed exactly as it reported.
				if r.Status != http.StatusOK || (stream && !r.Done) {
					t.Errorf("%s: request %d: status %d, stream done %t, want a whole answer from the backup", m.name, i, r.Status, r.Done)
				} else if !paid || u.Source != "upstream" || u.Prompt != 3 || u.Completion != 5 || u.Cost != okCost {
					t.Errorf("%s: request %s billed %+v, want the backup's 3+5 tokens, %d µ, from upstream", m.name, r.RequestID, u, okCost)
				}
			case "cut", "hang-mid":
				if !stream {
					// A JSON answer cut or stalled halfway is an error, never billed.
					if m.name == "cut" && r.Status == http.StatusOK {
						break // cut_after concerns streams only: a whole JSON answer
					}
					if r.Status == http.StatusOK || paid {
						t.Errorf("%s: JSON request %d: status %d, paid %t: a half answer must fail unbilled", m.name, i, r.Status, paid)
					}
					break
				}
				// After the first byte: the client keeps what it got, the
				// stream ends early with an error event, and it is billed once.
				if r.Status != http.StatusOK || r.Chunks == 0 || r.Chunks >= 10 || !strings.Contains(r.ErrorEvent, "UPSTREAM_") {
					t.Errorf("%s: stream %d: status %d, %d chunks, error event %q: want a started stream that ends early with an upstream error",
						m.name, i, r.Status, r.Chunks, r.ErrorEvent)
				} else if !paid || (u.Source != "upstream" && u.Source != "estimated") {
					t.Errorf("%s: stream %s billed %+v, want one charge with its usage_source", m.name, r.RequestID, rows[r.RequestID])
				}
			case "429-only":
				if r.Status != http.StatusTooManyRequests || r.RetryAfter != "1" || paid {
					t.Errorf("%s: request %d: status %d, Retry-After %q, paid %t: want upstream's 429 and wait, unbilled",
						m.name, i, r.Status, r.RetryAfter, paid)
				}
			case "hang-only":
				if r.Status != http.StatusGatewayTimeout || !strings.Contains(string(r.Body), "UPSTREAM_TIMEOUT") || paid {
					t.Errorf("%s: request %d: status %d %s, paid %t: want 504 UPSTREAM_TIMEOUT, unbilled", m.name, i, r.Status, r.Body, paid)
				}
				if r.Elapsed < 500*time.Millisecond {
					t.Errorf("%s: request %d answered after %s, before the 500 ms first-byte timeout", m.name, i, r.Elapsed)
				}
			case "no-usage":
				if r.Status != http.StatusOK || !paid || u.Source != "estimated" {
					t.Errorf("%s: request %d: status %d, billed %+v: want 200 billed once from a local count", m.name, i, r.Status, rows[r.RequestID])
				}
			}
		}
		switch {
		case m.failover && (backup != n || primary < 1 || primary > n):
			t.Errorf("%s: %d primary and %d backup attempts for %d requests: want each served once by the backup after ≤ 1 primary attempt", m.name, primary, backup, n)
		case !m.failover && (backup != 0 || primary != n):
			t.Errorf("%s: %d primary and %d backup attempts for %d requests: want exactly one primary attempt each and no failover", m.name, primary, backup, n)
		}
		summary = append(summary, fmt.Sprintf("%s:%v/%d+%d/%s", m.name, statuses, primary, backup, slowest.Round(10*time.Millisecond)))
	}
	if s.mockInFlight() != 0 {
		t.Errorf("the mock still answers %d requests: a hang was not given up", s.mockInFlight())
	}
	t.Logf("RESULT scenario=9 requests=%d modes(statuses/primary+backup attempts/slowest)=%s %s", tr.Total(), strings.Join(summary, " "), rep)
}

// Scenario 10, recovery: the upstream answers 503 until the breaker
// opens, then heals. After the cooldown the breaker half-opens, its probe
// succeeds, it closes, and every request succeeds again.
func TestBreakerRecoversWhenUpstreamHeals(t *testing.T) {
	const cooldown = time.Second
	s := startStack(t, stackOptions{})
	s.restartGatewayWithConfig(0, map[string]string{"cooldown: 10s": "cooldown: " + cooldown.String()})
	s.mockScenario("s10", map[string]any{"status": 503})
	s.mockProvider("s10", "m10", 0, upstreamTimeouts{})
	tn := s.setup(tenantOptions{TopupMicros: 50_000_000})
	s.waitModels(tn.Key, "m10")
	gw := s.GatewayURLs[0]

	tr := newTraffic()
	failures := 0
	for open := false; !open; failures++ {
		if failures == 20 {
			t.Fatalf("the breaker did not open after %d failures: %v", failures, tr.statuses)
		}
		r := chatModel(gw, tn.Key, "m10", 20, false, 0)
		tr.add(r.reply)
		if r.Status == http.StatusOK {
			t.Fatalf("a request succeeded against an upstream answering 503")
		}
		open = strings.Contains(string(r.Body), "CIRCUIT_OPEN")
	}

	// Heal the upstream; the breaker lets a probe through after the cooldown.
	s.mockScenario("s10", map[string]any{"status": 0})
	healed := time.Now()
	var recovery time.Duration
	s.eventually(30*time.Second, "a request succeeds after the upstream healed", func() bool {
		r := chatModel(gw, tn.Key, "m10", 20, false, 0)
		tr.add(r.reply)
		recovery = time.Since(healed)
		return r.Status == http.StatusOK
	})
	const after = 20
	for i := 0; i < after; i++ {
		r := chatModel(gw, tn.Key, "m10", 20, i%2 == 0, 0)
		tr.add(r.reply)
		if r.Status != http.StatusOK {
			t.Errorf("request %d after recovery: %d %s", i, r.Status, r.Body)
		}
	}
	state, ok := metricValue(gw, "lurus_gateway_breaker_state")
	if !ok || state != 0 {
		t.Errorf("breaker state gauge %v (present %t), want 0 (closed)", state, ok)
	}
	for _, to := range []string{"open", "half_open", "closed"} {
		if v, _ := metricValue(gw, "lurus_gateway_breaker_transitions_total", `to="`+to+`"`); v < 1 {
			t.Errorf("no breaker transition to %s recorded", to)
		}
	}
	// Only the failures before it opened, the probe and the successes
	// reached the upstream: nothing while it was open.
	if got, want := s.mockRequests()["s10"], failures-1+tr.Accepted(); got != want {
		t.Errorf("%d upstream attempts, want %d (%d failures before the breaker opened + %d successes)",
			got, want, failures-1, tr.Accepted())
	}
	rep := checkInvariants(s, tr, 0)
	if rep.Debits != tr.Accepted() {
		t.Errorf("%d debits for %d successful requests", rep.Debits, tr.Accepted())
	}
	t.Logf("RESULT scenario=10-recovery failures_to_open=%d cooldown=%s first_success_after_heal=%s statuses=%v %s",
		failures, cooldown, recovery.Round(10*time.Millisecond), tr.statuses, rep)
}

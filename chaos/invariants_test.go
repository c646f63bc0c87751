package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

// traffic is what the clients of a scenario saw: the request id of every
// answer, and which were accepted (2xx, so billable).
type traffic struct {
	mu       sync.Mutex
	accepted map[string]bool
	seen     map[string]bool
	statuses map[int]int
	errors   int
	// usage is the usage a completed (2xx, non-streamed) answer showed the
	// client: what mock-upstream sent, relayed.
	usage map[string]tokens
}

// tokens are a request's prompt and completion tokens.
type tokens struct{ Prompt, Completion int64 }

func newTraffic() *traffic {
	return &traffic{accepted: map[string]bool{}, seen: map[string]bool{}, statuses: map[int]int{}, usage: map[string]tokens{}}
}

// add records one reply.
func (tr *traffic) add(r reply) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if r.Err != nil {
		tr.errors++
		return
	}
	tr.statuses[r.Status]++
	if r.RequestID == "" {
		return
	}
	tr.seen[r.RequestID] = true
	if r.Status/100 == 2 {
		tr.accepted[r.RequestID] = true
		var b struct {
			Usage *struct {
				Prompt     int64 `json:"prompt_tokens"`
				Completion int64 `json:"completion_tokens"`
			} `json:"usage"`
		}
		if json.Unmarshal(r.Body, &b) == nil && b.Usage != nil {
			tr.usage[r.RequestID] = tokens{b.Usage.Prompt, b.Usage.Completion}
		}
	}
}

// keepOnly takes out of the accepted set every id that is neither in
// published nor in outbox (a killed gateway's events still in memory: the
// loss window) and returns how many it took out.
func (tr *traffic) keepOnly(published []string, outbox map[string]bool) int {
	kept := make(map[string]bool, len(published))
	for _, id := range published {
		kept[id] = true
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for id := range tr.accepted {
		if !kept[id] && !outbox[id] {
			delete(tr.accepted, id)
			n++
		}
	}
	return n
}

// Accepted is the number of 2xx answers.
func (tr *traffic) Accepted() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.accepted)
}

// Total is the number of answers and transport errors.
func (tr *traffic) Total() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := tr.errors
	for _, c := range tr.statuses {
		n += c
	}
	return n
}

// report is what the checker measured, for RELIABILITY.md.
type report struct {
	// SettleWait is how long after the check began everything was settled.
	SettleWait time.Duration
	// Redelivered counts deliveries of the billing consumer beyond the
	// first of each message (JetStream's consumer sequence minus its stream
	// sequence).
	Redelivered uint64
	UsageRows   int
	Debits      int
	DeadLetters uint64
	// Logs is the request-log check's, when the stack has one.
	Logs *logReport
}

func (r report) String() string {
	s := fmt.Sprintf("settled after %s, %d usage rows, %d debits, %d redeliveries, %d dead letters",
		r.SettleWait.Round(10*time.Millisecond), r.UsageRows, r.Debits, r.Redelivered, r.DeadLetters)
	if r.Logs != nil {
		s += ", " + r.Logs.String()
	}
	return s
}

// settleGrace bounds how long the checker waits for the stack to settle
// after a scenario's faults end.
const settleGrace = 90 * time.Second

// checkInvariants waits until the stack has settled, then asserts what
// must hold after any fault:
//
//   - nothing unsettled: the billing consumer has no pending and no
//     unacknowledged message, and nothing was dead-lettered;
//   - every accepted request id has one usage_records row and one usage
//     debit; no row exists for an id no client saw;
//   - every user's ledger sum equals their balance;
//   - no balance is below −(credit limit + overdraftBound);
//   - the Redis admission mirror equals PostgreSQL, both as the live
//     services left it and after `billing-service rebuild-cache`, and no
//     reservation is left open;
//   - when the stack runs the request log: ClickHouse counts each request
//     once (checkLogCounts).
//
// It returns what it measured; a violation fails the test.
func checkInvariants(s *stack, tr *traffic, overdraftBound int64) report {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), settleGrace+60*time.Second)
	defer cancel()
	var rep report
	tr.mu.Lock()
	accepted := make([]string, 0, len(tr.accepted))
	for id := range tr.accepted {
		accepted = append(accepted, id)
	}
	seen := make(map[string]bool, len(tr.seen))
	for id := range tr.seen {
		seen[id] = true
	}
	tr.mu.Unlock()

	nc, err := nats.Connect(s.NATSURL, nats.Timeout(2*time.Second))
	if err != nil {
		s.t.Fatalf("invariants: nats: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		s.t.Fatal(err)
	}
	names := events.NewNames("")

	// 1. Settled: every accepted id recorded, the consumer drained.
	start := time.Now()
	var last string
	for {
		var missing int
		err := s.BillingDB.QueryRow(ctx, `SELECT count(*) FROM unnest($1::text[]) AS a(id)
			WHERE NOT EXISTS (SELECT 1 FROM usage_records u WHERE u.request_id = a.id)`, accepted).Scan(&missing)
		if err == nil {
			var ci *jetstream.ConsumerInfo
			ci, err = consumerInfo(ctx, js, names)
			if err == nil {
				rep.Redelivered = ci.Delivered.Consumer - ci.Delivered.Stream
				last = fmt.Sprintf("%d accepted ids unrecorded, consumer pending %d, ack pending %d", missing, ci.NumPending, ci.NumAckPending)
				if missing == 0 && ci.NumPending == 0 && ci.NumAckPending == 0 {
					break
				}
			}
		}
		if err != nil {
			last = err.Error()
		}
		if time.Since(start) > settleGrace {
			s.t.Fatalf("invariant: not settled within %s: %s", settleGrace, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rep.SettleWait = time.Since(start)
	if st, err := js.Stream(ctx, names.Stream(events.StreamDead)); err != nil {
		s.t.Errorf("invariant: dead-letter stream: %v", err)
	} else if info, err := st.Info(ctx); err != nil {
		s.t.Errorf("invariant: dead-letter stream: %v", err)
	} else if rep.DeadLetters = info.State.Msgs; rep.DeadLetters != 0 {
		s.t.Errorf("invariant: %d messages dead-lettered", rep.DeadLetters)
	}

	// 2. One usage row and one debit per accepted id; no phantom rows.
	rows, err := s.BillingDB.Query(ctx, `SELECT u.request_id, u.cost_micros,
			(SELECT count(*) FROM ledger_entries l WHERE l.kind = 'usage' AND l.request_id = u.request_id),
			(SELECT coalesce(sum(-l.amount_micros), 0) FROM ledger_entries l WHERE l.kind = 'usage' AND l.request_id = u.request_id)
		FROM usage_records u`)
	if err != nil {
		s.t.Fatal(err)
	}
	recorded := map[string]bool{}
	for rows.Next() {
		var id string
		var cost, debits, debited int64
		if err := rows.Scan(&id, &cost, &debits, &debited); err != nil {
			s.t.Fatal(err)
		}
		recorded[id] = true
		rep.UsageRows++
		rep.Debits += int(debits)
		wantDebits := int64(0)
		if cost > 0 {
			wantDebits = 1
		}
		if debits != wantDebits || debited != cost {
			s.t.Errorf("invariant: request %s costs %d but has %d usage debits summing %d", id, cost, debits, debited)
		}
		if !seen[id] {
			s.t.Errorf("invariant: usage row for request %s that no client saw", id)
		}
	}
	if err := rows.Err(); err != nil {
		s.t.Fatal(err)
	}
	for _, id := range accepted {
		if !recorded[id] {
			s.t.Errorf("invariant: accepted request %s has no usage row", id)
		}
	}
	var orphanDebits int
	if err := s.BillingDB.QueryRow(ctx, `SELECT count(*) FROM ledger_entries l WHERE l.kind = 'usage'
		AND NOT EXISTS (SELECT 1 FROM usage_records u WHERE u.request_id = l.request_id)`).Scan(&orphanDebits); err != nil {
		s.t.Fatal(err)
	}
	if orphanDebits != 0 {
		s.t.Errorf("invariant: %d usage debits without a usage row", orphanDebits)
	}

	// 3 and 4. Ledger sum equals balance; no balance past the credit bound.
	type account struct {
		balance, credit, qlim, qused, version int64
		active                                bool
	}
	users := map[string]account{}
	urows, err := s.BillingDB.Query(ctx, `SELECT u.id, u.balance_micros, u.credit_limit_micros, u.quota_limit_tokens,
			u.quota_used_tokens, u.version, u.status = 'active',
			coalesce((SELECT sum(l.amount_micros) FROM ledger_entries l WHERE l.user_id = u.id), 0)
		FROM users u`)
	if err != nil {
		s.t.Fatal(err)
	}
	for urows.Next() {
		var id string
		var a account
		var sum int64
		if err := urows.Scan(&id, &a.balance, &a.credit, &a.qlim, &a.qused, &a.version, &a.active, &sum); err != nil {
			s.t.Fatal(err)
		}
		users[id] = a
		if sum != a.balance {
			s.t.Errorf("invariant: user %s ledger sum %d != balance %d", id, sum, a.balance)
		}
		if a.balance < -(a.credit + overdraftBound) {
			s.t.Errorf("invariant: user %s balance %d below −(credit %d + bound %d)", id, a.balance, a.credit, overdraftBound)
		}
	}
	if err := urows.Err(); err != nil {
		s.t.Fatal(err)
	}

	// 5. The Redis mirror equals PostgreSQL, live and after a rebuild, and
	// every hold was released (leases go back when idle).
	rdb := redis.NewClient(&redis.Options{Addr: s.RedisAddr})
	defer rdb.Close()
	compare := func(when string, final bool) bool {
		ok := true
		for id, a := range users {
			m, err := rdb.HGetAll(ctx, "lurus:adm:{"+id+"}:acct").Result()
			if err != nil {
				s.t.Fatalf("invariant: redis: %v", err)
			}
			n := func(k string) int64 { v, _ := strconv.ParseInt(m[k], 10, 64); return v }
			got := account{balance: n("bal"), credit: n("credit"), qlim: n("qlim"), qused: n("qused"), version: n("ver"), active: m["status"] == "active"}
			if len(m) == 0 || got != a || n("rmic") != 0 || n("rtok") != 0 {
				ok = false
				if final {
					s.t.Errorf("invariant: %s: redis mirror of %s is %v (reserved %s µ, %s tokens), postgres %+v",
						when, id, m, m["rmic"], m["rtok"], a)
				}
			}
		}
		return ok
	}
	for deadline := time.Now().Add(15 * time.Second); !compare("live", false); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			compare("live", true)
			break
		}
	}
	s.RebuildCache()
	compare("after rebuild-cache", true)
	if s.Logs != nil {
		lr := checkLogCounts(ctx, s, js, accepted, seen)
		rep.Logs = &lr
	}

	s.checkBilledTokens(ctx, tr)
	s.checkBaseline()
	s.t.Logf("invariants: %s", rep)
	return rep
}

// checkBilledTokens asserts that each completed answer's usage row holds
// the tokens the client saw, from the upstream.
func (s *stack) checkBilledTokens(ctx context.Context, tr *traffic) {
	s.t.Helper()
	tr.mu.Lock()
	seen := make(map[string]tokens, len(tr.usage))
	ids := make([]string, 0, len(tr.usage))
	for id, u := range tr.usage {
		if tr.accepted[id] { // a scenario may drop an id it proved lost
			seen[id] = u
			ids = append(ids, id)
		}
	}
	tr.mu.Unlock()
	rows, err := s.BillingDB.Query(ctx, `SELECT request_id, prompt_tokens, completion_tokens, usage_source
		FROM usage_records WHERE request_id = ANY($1)`, ids)
	if err != nil {
		s.t.Fatal(err)
	}
	defer rows.Close()
	bad := 0
	for rows.Next() {
		var id, src string
		var got tokens
		if err := rows.Scan(&id, &got.Prompt, &got.Completion, &src); err != nil {
			s.t.Fatal(err)
		}
		want := seen[id]
		if got != want || src != "upstream" {
			if bad++; bad <= 5 {
				s.t.Errorf("invariant: request %s billed %+v (%s), the client was answered with usage %+v", id, got, src, want)
			}
		}
		if s.mockUsage != nil && want != *s.mockUsage {
			if bad++; bad <= 5 {
				s.t.Errorf("invariant: request %s answered with usage %+v, mock-upstream sends %+v", id, want, *s.mockUsage)
			}
		}
	}
	if err := rows.Err(); err != nil {
		s.t.Fatal(err)
	}
	if bad > 5 {
		s.t.Errorf("invariant: %d token mismatches in all", bad)
	}
	s.t.Logf("invariants: %d completed answers compared with their billed tokens, %d mismatches", len(ids), bad)
}

// procStats are a service's goroutines and open file descriptors.
type procStats struct{ Goroutines, FDs float64 }

// serviceURLs names every service process of the stack by its base URL.
func (s *stack) serviceURLs() map[string]string {
	m := map[string]string{"billing-service": s.BillingURL, "provider-service": s.ProviderURL}
	for i, u := range s.GatewayURLs {
		m[fmt.Sprintf("gateway-%d", i+1)] = u
	}
	return m
}

// takeBaseline records every service's goroutines and descriptors.
func (s *stack) takeBaseline() {
	s.baseline = map[string]procStats{}
	for name, u := range s.serviceURLs() {
		s.baseline[name] = procStats{metricAt(u, "go_goroutines"), metricAt(u, "process_open_fds")}
	}
}

// Tolerances of checkBaseline: pools (PostgreSQL, Redis, keep-alive
// connections to the upstream and from clients the scenario does not
// own) may stay warmer than after setup, bounded by a scenario's
// concurrency (scenario 8, 20 streams at a time, leaves the gateway
// +37 descriptors and +6 goroutines); a leak per request or per fault
// (hundreds to thousands of them per scenario) grows past them.
const (
	baselineGoroutines = 60
	baselineFDs        = 64
)

// checkBaseline waits (up to 30 s) until every service's goroutines and
// open descriptors are back within the tolerance of the baseline, after
// the clients closed their idle connections.
func (s *stack) checkBaseline() {
	s.t.Helper()
	if s.baseline == nil {
		return
	}
	httpClient.CloseIdleConnections()
	http.DefaultClient.CloseIdleConnections()
	var last, deltas []string
	start := time.Now()
	for {
		last, deltas = last[:0], deltas[:0]
		for name, u := range s.serviceURLs() {
			b := s.baseline[name]
			now := procStats{metricAt(u, "go_goroutines"), metricAt(u, "process_open_fds")}
			if now.Goroutines < 0 || now.FDs < 0 {
				last = append(last, name+": /metrics not answering")
			} else if now.Goroutines > b.Goroutines+baselineGoroutines || now.FDs > b.FDs+baselineFDs {
				last = append(last, fmt.Sprintf("%s: %.0f goroutines, %.0f fds (baseline %.0f, %.0f)", name, now.Goroutines, now.FDs, b.Goroutines, b.FDs))
			} else {
				deltas = append(deltas, fmt.Sprintf("%s %+.0f/%+.0f", name, now.Goroutines-b.Goroutines, now.FDs-b.FDs))
			}
		}
		if len(last) == 0 {
			slices.Sort(deltas)
			s.t.Logf("invariants: goroutines/fds against the baseline after %s: %s", time.Since(start).Round(10*time.Millisecond), strings.Join(deltas, ", "))
			return
		}
		if time.Since(start) > 30*time.Second {
			for _, l := range last {
				s.t.Errorf("invariant: not back to baseline: %s", l)
			}
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// consumerInfo reads the billing consumer's state on the private NATS.
func consumerInfo(ctx context.Context, js jetstream.JetStream, names events.Names) (*jetstream.ConsumerInfo, error) {
	c, err := js.Consumer(ctx, names.Stream(events.StreamBilling), events.DurableBilling)
	if err != nil {
		return nil, err
	}
	return c.Info(ctx)
}

package chaos

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// addTenant creates one more user with a balance and a key on a stack
// that setup already furnished (provider and prices), and waits until
// every gateway has verified the key.
func (s *stack) addTenant(name string, topup int64) tenant {
	s.t.Helper()
	var user struct {
		ID string `json:"id"`
	}
	s.admin(http.MethodPost, s.BillingURL+"/api/v1/billing/users", map[string]any{"name": name, "email": name + "@example.com"}, &user, http.StatusCreated)
	s.admin(http.MethodPost, s.BillingURL+"/api/v1/billing/users/"+user.ID+"/topup",
		map[string]any{"amount_micros": topup, "note": "chaos"}, nil, http.StatusCreated, "Idempotency-Key", "chaos-topup-"+user.ID)
	var key struct {
		Key string `json:"key"`
	}
	s.admin(http.MethodPost, s.BillingURL+"/api/v1/billing/users/"+user.ID+"/keys", map[string]any{"name": name}, &key, http.StatusCreated)
	s.addSecret(key.Key)
	tn := tenant{UserID: user.ID, Key: key.Key}
	for _, gw := range s.GatewayURLs {
		s.eventually(30*time.Second, "gateway "+gw+" accepts the key of "+name, func() bool {
			req, _ := http.NewRequest(http.MethodGet, gw+"/v1/models", nil)
			req.Header.Set("Authorization", "Bearer "+tn.Key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}
	return tn
}

// balance reads a user's balance from PostgreSQL (an error while the
// server is down or just back is returned, not fatal).
func (s *stack) balance(userID string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var b int64
	err := s.BillingDB.QueryRow(ctx, `SELECT balance_micros FROM users WHERE id = $1`, userID).Scan(&b)
	return b, err
}

// usageCount counts settled requests (-1 while PostgreSQL cannot answer).
func (s *stack) usageCount() int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int
	if err := s.BillingDB.QueryRow(ctx, `SELECT count(*) FROM usage_records`).Scan(&n); err != nil {
		return -1
	}
	return n
}

// upstreamCalls is the number of requests mock-upstream has answered.
func (s *stack) upstreamCalls() int {
	s.t.Helper()
	resp, err := http.Get(s.MockURL + "/__stats")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Total int `json:"total"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		s.t.Fatal(err)
	}
	return st.Total
}

// timedLoad is a load generator for one key that also remembers when each
// answer came and how it ended, so a scenario can ask what happened after
// a given moment.
type timedLoad struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	answers []timedAnswer
	// refusedRun counts consecutive 402s (reset by any other answer).
	refusedRun atomic.Int64
}

type timedAnswer struct {
	at     time.Time
	status int // 0: transport error
	reason string
}

func startTimedLoad(gws []string, key string, maxTokens, workers int, tr *traffic) *timedLoad {
	return startPacedLoad(gws, key, maxTokens, workers, 0, tr)
}

// startPacedLoad is startTimedLoad whose workers each wait pace between
// requests.
func startPacedLoad(gws []string, key string, maxTokens, workers int, pace time.Duration, tr *traffic) *timedLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &timedLoad{cancel: cancel}
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := w; ctx.Err() == nil; i++ {
				if i >= workers {
					time.Sleep(pace)
				}
				r := chat(gws[i%len(gws)], key, maxTokens)
				tr.add(r)
				a := timedAnswer{at: time.Now(), status: r.Status, reason: errorReason(r.Body)}
				if r.Err != nil {
					a.status = 0
				}
				if a.status == http.StatusPaymentRequired {
					l.refusedRun.Add(1)
				} else {
					l.refusedRun.Store(0)
				}
				l.mu.Lock()
				l.answers = append(l.answers, a)
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *timedLoad) stop() { l.cancel(); l.wg.Wait() }

// since returns the answers that came after t.
func (l *timedLoad) since(t time.Time) []timedAnswer {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []timedAnswer
	for _, a := range l.answers {
		if a.at.After(t) {
			out = append(out, a)
		}
	}
	return out
}

// firstOK is the time of the first 2xx after t (zero if none).
func (l *timedLoad) firstOK(t time.Time) time.Time {
	for _, a := range l.since(t) {
		if a.status/100 == 2 {
			return a.at
		}
	}
	return time.Time{}
}

// countOK counts the 2xx answers after t.
func (l *timedLoad) countOK(t time.Time) int {
	n := 0
	for _, a := range l.since(t) {
		if a.status/100 == 2 {
			n++
		}
	}
	return n
}

// errorReason pulls the stable reason string out of an OpenAI-format
// error body ("" when there is none).
func errorReason(body []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return e.Error.Code
}

// tally counts answers by status (and reason for refusals).
func tally(as []timedAnswer) map[string]int {
	out := map[string]int{}
	for _, a := range as {
		k := strconv.Itoa(a.status)
		if a.reason != "" {
			k += " " + a.reason
		}
		out[k]++
	}
	return out
}

// Scenario 4: PostgreSQL is restarted with `pg_ctl restart -m immediate`
// (an immediate stop, then a start: crash recovery) while clients keep
// sending requests. The gateway keeps serving from the Redis mirror; the
// billing consumer fails to commit while the server is gone, backs off and
// catches up once it is back; every accepted request is settled once.
func TestPostgresRestartedImmediateUnderLoad(t *testing.T) {
	s := startStack(t, stackOptions{MockArgs: []string{"-usage", "prompt=1,completion=20", "-latency-ms", "5"}})
	tn := s.setup(tenantOptions{TopupMicros: 50_000_000})
	tr := newTraffic()
	load := startLoad(s.GatewayURLs, tn.Key, 20, 4, tr)
	defer load.stop()

	s.eventually(30*time.Second, "requests settled before the restart", func() bool { return s.usageCount() >= 50 })
	before := s.usageCount()
	acceptedAtStop := tr.Accepted()
	stoppedAt := time.Now()
	if err := s.PG.Stop("immediate"); err != nil {
		t.Fatal(err)
	}
	// Down for as long as it takes the gateway to accept 300 more
	// requests: they can only be settled after the restart.
	s.eventually(60*time.Second, "gateway serves while PostgreSQL is down", func() bool { return tr.Accepted() >= acceptedAtStop+300 })
	acceptedWhileDown := tr.Accepted() - acceptedAtStop
	if err := s.PG.Start(); err != nil {
		t.Fatal(err)
	}
	down := time.Since(stoppedAt)
	startedAt := time.Now()
	s.BillingDB.Reset() // the checker's own connections died with the server
	s.eventually(60*time.Second, "billing settles again after the restart", func() bool { return s.usageCount() > before })
	firstCommit := time.Since(startedAt)
	// More traffic after the recovery, so catching up happens under load.
	acceptedAtRecovery := tr.Accepted()
	s.eventually(60*time.Second, "gateway serves after the restart", func() bool { return tr.Accepted() >= acceptedAtRecovery+100 })
	load.stop()

	rep := checkInvariants(s, tr, 0)
	t.Logf("RESULT scenario=4 requests=%d accepted=%d accepted_while_down=%d statuses=%v transport_errors=%d pg_down=%s first_commit_after_start=%s %s",
		tr.Total(), tr.Accepted(), acceptedWhileDown, tr.statuses, tr.errors, down.Round(time.Millisecond), firstCommit.Round(time.Millisecond), rep)
	if tr.errors != 0 {
		t.Errorf("%d requests got no answer", tr.errors)
	}
}

// Scenario 5: PostgreSQL is unreachable while the gateway needs to load a
// user's admission state (the user's Redis mirror is missing, so the
// gateway asks billing to load it, and billing cannot read PostgreSQL).
// The configured behaviour is fail closed: 503 in the caller's format, no
// upstream call, nothing admitted; once PostgreSQL is back the user is
// served again. A user whose mirror is present keeps being served, and
// what it was served is settled after the restart.
func TestPostgresDownDuringAdmissionLoad(t *testing.T) {
	s := startStack(t, stackOptions{MockArgs: []string{"-usage", "prompt=1,completion=20"}})
	present := s.setup(tenantOptions{TopupMicros: 10_000_000})
	missing := s.addTenant("missing-mirror", 10_000_000)
	tr := newTraffic()
	gw := s.GatewayURLs[0]

	rdb := redis.NewClient(&redis.Options{Addr: s.RedisAddr})
	defer rdb.Close()
	ctx := context.Background()
	// Both keys are verified and cached (billing cannot verify a key
	// while PostgreSQL is down), after their key.changed events, and the
	// gateway has given its leases back (idle 1 s), so the next request
	// must find or load the mirror.
	for _, tn := range []tenant{present, missing} {
		s.eventually(30*time.Second, "the gateway serves "+tn.UserID, func() bool {
			r := chat(gw, tn.Key, 20)
			tr.add(r)
			return r.Status == http.StatusOK
		})
	}
	for _, tn := range []tenant{present, missing} {
		s.eventually(30*time.Second, "the lease of "+tn.UserID+" is given back", func() bool {
			m, err := rdb.HGetAll(ctx, "lurus:adm:{"+tn.UserID+"}:acct").Result()
			return err == nil && m["rmic"] == "0" && m["rtok"] == "0"
		})
		if r := chat(gw, tn.Key, 20); r.Status != http.StatusOK {
			t.Fatalf("%s before the fault: %d %s", tn.UserID, r.Status, r.Body)
		} else {
			tr.add(r)
		}
	}
	s.eventually(30*time.Second, "the leases are given back again", func() bool {
		for _, tn := range []tenant{present, missing} {
			m, err := rdb.HGetAll(ctx, "lurus:adm:{"+tn.UserID+"}:acct").Result()
			if err != nil || m["rmic"] != "0" || m["rtok"] != "0" {
				return false
			}
		}
		return true
	})
	s.eventually(30*time.Second, "the debits before the fault are settled", func() bool { return s.usageCount() == tr.Accepted() })
	base := "lurus:adm:{" + missing.UserID + "}:"
	if n, err := rdb.Del(ctx, base+"acct", base+"res", base+"exp").Result(); err != nil || n == 0 {
		t.Fatalf("deleting the mirror of %s: %d keys, %v", missing.UserID, n, err)
	}
	if err := s.PG.Stop("immediate"); err != nil {
		t.Fatal(err)
	}
	upstreamBefore := s.upstreamCalls()
	const tries = 20
	refusals := map[string]int{}
	for i := 0; i < tries; i++ {
		r := chat(gw, missing.Key, 20)
		tr.add(r)
		if r.Err != nil {
			t.Fatalf("request %d while PostgreSQL is down: %v", i, r.Err)
		}
		refusals[strconv.Itoa(r.Status)+" "+errorReason(r.Body)]++
		if r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), "cannot load the account's balance") {
			t.Errorf("request %d of the user without a mirror while PostgreSQL is down: %d %s, want 503", i, r.Status, r.Body)
		}
		if strings.Contains(string(r.Body), "postgres") || strings.Contains(string(r.Body), "dial") {
			t.Errorf("refusal leaks an internal error: %s", r.Body)
		}
	}
	if got := s.upstreamCalls() - upstreamBefore; got != 0 {
		t.Errorf("%d upstream calls for requests refused before admission", got)
	}
	if m, _ := rdb.HGetAll(ctx, base+"acct").Result(); len(m) != 0 {
		t.Errorf("a mirror appeared while PostgreSQL was down: %v", m)
	}
	// The user whose mirror is in Redis is admitted as usual; the debits
	// wait in NATS for PostgreSQL.
	presentSeen := map[string]int{}
	for i := 0; i < tries; i++ {
		r := chat(gw, present.Key, 20)
		tr.add(r)
		presentSeen[strconv.Itoa(r.Status)+" "+errorReason(r.Body)]++
	}
	if err := s.PG.Start(); err != nil {
		t.Fatal(err)
	}
	startedAt := time.Now()
	s.BillingDB.Reset()
	var servedAgain time.Duration
	s.eventually(60*time.Second, "the user without a mirror is served once PostgreSQL is back", func() bool {
		r := chat(gw, missing.Key, 20)
		tr.add(r)
		if r.Status == http.StatusOK {
			servedAgain = time.Since(startedAt)
			return true
		}
		return false
	})
	rep := checkInvariants(s, tr, 0)
	t.Logf("RESULT scenario=5 refused_while_down=%v present_user_while_down=%v served_again_after_start=%s upstream_calls_for_refused=0 %s",
		refusals, presentSeen, servedAgain.Round(time.Millisecond), rep)
}

// leaseScenario is the common shape of scenario 6's two faults: a rich
// user whose traffic must never be refused once the mirror is rebuilt,
// and a poor user whose balance the load runs out, to measure how far a
// Redis fault lets spending pass the balance.
type leaseScenario struct {
	s          *stack
	rich, poor tenant
	tr         *traffic
	richLoad   *timedLoad
	poorLoad   *timedLoad
	poorTopup  int64
}

const (
	// leaseScenarioTopup is the poor user's balance: some hundred
	// requests at about 50 µ each, run out in seconds.
	leaseScenarioTopup = 20_000
)

func startLeaseScenario(t *testing.T) *leaseScenario {
	s := startStack(t, stackOptions{MockArgs: []string{"-usage", "prompt=1,completion=20", "-latency-ms", "5"}})
	ls := &leaseScenario{s: s, tr: newTraffic(), poorTopup: leaseScenarioTopup}
	ls.rich = s.setup(tenantOptions{TopupMicros: 50_000_000})
	ls.poor = s.addTenant("poor", ls.poorTopup)
	ls.richLoad = startTimedLoad(s.GatewayURLs, ls.rich.Key, 20, 2, ls.tr)
	ls.poorLoad = startTimedLoad(s.GatewayURLs, ls.poor.Key, 20, 2, ls.tr)
	t.Cleanup(func() { ls.richLoad.stop(); ls.poorLoad.stop() })
	// The fault comes once the poor user has spent some of the balance
	// (its lease is extended, requests are in flight) but not all of it.
	s.eventually(60*time.Second, "the poor user has spent a third of the balance", func() bool {
		b, err := s.balance(ls.poor.UserID)
		return err == nil && b < ls.poorTopup*2/3
	})
	return ls
}

// finish keeps the load on until the poor user is refused steadily and
// the rich user has been served for a while after recovered, stops it,
// checks the invariants, and returns the poor user's overspend (how far
// below zero its balance went; its credit limit is 0).
func (ls *leaseScenario) finish(t *testing.T, recovered time.Time) (overspend int64, rep report) {
	s := ls.s
	s.eventually(60*time.Second, "the poor user is refused steadily (50 402s in a row)", func() bool { return ls.poorLoad.refusedRun.Load() >= 50 })
	s.eventually(60*time.Second, "the rich user is served after the recovery", func() bool { return ls.richLoad.countOK(recovered) >= 100 })
	ls.richLoad.stop()
	ls.poorLoad.stop()
	// The bound: the poor user's availability is at most its top-up, so
	// one extension is at most 1/8 of it, per gateway.
	bound := ls.poorTopup / 8 * int64(len(s.GatewayURLs))
	rep = checkInvariants(s, ls.tr, bound)
	if t.Failed() { // what Redis still holds for the poor user, for the post-mortem
		rdb := redis.NewClient(&redis.Options{Addr: s.RedisAddr})
		m, _ := rdb.HGetAll(context.Background(), "lurus:adm:{"+ls.poor.UserID+"}:res").Result()
		e, _ := rdb.ZRangeWithScores(context.Background(), "lurus:adm:{"+ls.poor.UserID+"}:exp", 0, -1).Result()
		t.Logf("poor user's entries: res=%v exp=%v now=%d", m, e, time.Now().UnixMilli())
		rdb.Close()
	}
	b, err := s.balance(ls.poor.UserID)
	if err != nil {
		t.Fatal(err)
	}
	overspend = max(0, -b)
	if overspend > bound {
		t.Errorf("overspend %d µ past the documented lease bound %d µ (1/8 of the %d µ balance per gateway)", overspend, bound, ls.poorTopup)
	}
	return overspend, rep
}

// falseRefusals returns the rich user's answers after t that were not 2xx.
func falseRefusals(l *timedLoad, t time.Time) []timedAnswer {
	var out []timedAnswer
	for _, a := range l.since(t) {
		if a.status/100 != 2 {
			out = append(out, a)
		}
	}
	return out
}

// Scenario 6a: the private Redis is flushed (FLUSHDB) under load. The
// mirrors are rebuilt on demand (the gateway asks billing to load a
// missing one); a user with money is never refused, and the poor user's
// spending passes its balance by no more than the documented lease bound.
func TestRedisFlushedUnderLoad(t *testing.T) {
	ls := startLeaseScenario(t)
	s := ls.s
	rdb := redis.NewClient(&redis.Options{Addr: s.RedisAddr})
	defer rdb.Close()
	flushedAt := time.Now()
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	overspend, rep := ls.finish(t, flushedAt)
	bad := falseRefusals(ls.richLoad, flushedAt)
	t.Logf("RESULT scenario=6a fault=FLUSHDB requests=%d accepted=%d statuses=%v rich_after_flush=%v poor_after_flush=%v overspend_micros=%d bound_micros=%d poor_topup=%d %s",
		ls.tr.Total(), ls.tr.Accepted(), ls.tr.statuses, tally(ls.richLoad.since(flushedAt)), tally(ls.poorLoad.since(flushedAt)),
		overspend, ls.poorTopup/8, ls.poorTopup, rep)
	if len(bad) != 0 {
		t.Errorf("the rich user was refused %d times after the flush: %v", len(bad), tally(bad))
	}
}

// Scenario 6b: the private Redis is SIGKILLed under load and started
// again (empty: no persistence). While it is down admission fails closed
// (503) except from what a gateway already held; once the first request
// is admitted again, a user with money is never refused, and the poor
// user's overspend stays within the documented lease bound.
func TestRedisKilledAndRestartedUnderLoad(t *testing.T) {
	ls := startLeaseScenario(t)
	s := ls.s
	killedAt := time.Now()
	s.Redis.Kill()
	// Down until the rich user's requests are refused: the gateway has
	// used up what it held.
	s.eventually(60*time.Second, "admission fails closed while Redis is down", func() bool {
		for _, a := range ls.richLoad.since(killedAt) {
			if a.status == http.StatusServiceUnavailable {
				return true
			}
		}
		return false
	})
	s.Redis.Start()
	waitTCP(t, "redis-server", s.RedisAddr)
	restartedAt := time.Now()
	down := restartedAt.Sub(killedAt)
	s.eventually(60*time.Second, "the rich user is admitted after the restart", func() bool { return !ls.richLoad.firstOK(restartedAt).IsZero() })
	rebuilt := ls.richLoad.firstOK(restartedAt)
	overspend, rep := ls.finish(t, rebuilt)
	bad := falseRefusals(ls.richLoad, rebuilt)
	t.Logf("RESULT scenario=6b fault=redis-SIGKILL+restart requests=%d accepted=%d statuses=%v redis_down=%s first_admitted_after_start=%s rich_while_down=%v rich_after_rebuild=%v poor_after_kill=%v overspend_micros=%d bound_micros=%d poor_topup=%d %s",
		ls.tr.Total(), ls.tr.Accepted(), ls.tr.statuses, down.Round(time.Millisecond), rebuilt.Sub(restartedAt).Round(time.Millisecond),
		tally(answersBetween(ls.richLoad, killedAt, restartedAt)), tally(ls.richLoad.since(rebuilt)), tally(ls.poorLoad.since(killedAt)),
		overspend, ls.poorTopup/8, ls.poorTopup, rep)
	if len(bad) != 0 {
		t.Errorf("the rich user was refused %d times after the rebuild: %v", len(bad), tally(bad))
	}
}

// answersBetween returns l's answers in (from, to].
func answersBetween(l *timedLoad, from, to time.Time) []timedAnswer {
	var out []timedAnswer
	for _, a := range l.since(from) {
		if !a.at.After(to) {
			out = append(out, a)
		}
	}
	return out
}

package chaos

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// envInt reads a volume knob of the suite (CHAOS_*), with a default.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// loadGen keeps workers clients sending chat requests through the
// gateways (round robin) until stop is called; every answer goes to tr.
type loadGen struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startLoad(gws []string, key string, maxTokens, workers int, tr *traffic) *loadGen {
	return startLoadObserved(gws, []string{key}, maxTokens, workers, tr, nil)
}

// startLoadKeys is startLoad for many keys: each worker takes the keys in
// turn.
func startLoadKeys(gws, keys []string, maxTokens, workers int, tr *traffic) *loadGen {
	return startLoadObserved(gws, keys, maxTokens, workers, tr, nil)
}

// startLoadObserved is startLoadKeys that also hands every reply to
// observe (when not nil), from the worker's goroutine.
func startLoadObserved(gws, keys []string, maxTokens, workers int, tr *traffic, observe func(reply)) *loadGen {
	ctx, cancel := context.WithCancel(context.Background())
	l := &loadGen{cancel: cancel}
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := w; ctx.Err() == nil; i++ {
				r := chat(gws[i%len(gws)], keys[i%len(keys)], maxTokens)
				tr.add(r)
				if observe != nil {
					observe(r)
				}
			}
		}()
	}
	return l
}

func (l *loadGen) stop() { l.cancel(); l.wg.Wait() }

// Scenario 1: the billing consumer (the billing-service process) is
// SIGKILLed again and again at random points while requests are being
// settled, and restarted each time. Every accepted request is settled
// exactly once and each ledger still sums to its balance.
func TestBillingConsumerKilledRepeatedly(t *testing.T) {
	s := startStack(t, stackOptions{MockArgs: []string{"-usage", "prompt=1,completion=20", "-latency-ms", "5"}})
	tn := s.setup(tenantOptions{TopupMicros: 50_000_000})
	kills := envInt("CHAOS_BILLING_KILLS", 50)

	tr := newTraffic()
	load := startLoad(s.GatewayURLs, tn.Key, 20, 4, tr)
	var restarts time.Duration
	var maxRestart time.Duration
	for i := 0; i < kills; i++ {
		time.Sleep(time.Duration(20+rand.IntN(181)) * time.Millisecond)
		s.Billing.Kill()
		d := s.RestartBilling()
		restarts += d
		maxRestart = max(maxRestart, d)
	}
	// Some traffic after the last restart, so the last kill is settled
	// under load too.
	time.Sleep(500 * time.Millisecond)
	load.stop()
	if tr.Accepted() == 0 {
		t.Fatalf("no request accepted during the kills: %v", tr.statuses)
	}
	rep := checkInvariants(s, tr, 0)
	t.Logf("RESULT scenario=1 kills=%d requests=%d accepted=%d statuses=%v transport_errors=%d restart_avg=%s restart_max=%s %s",
		kills, tr.Total(), tr.Accepted(), tr.statuses, tr.errors, (restarts / time.Duration(kills)).Round(time.Millisecond),
		maxRestart.Round(time.Millisecond), rep)
	if rep.Redelivered == 0 {
		t.Errorf("%d kills caused no redelivery: the kills did not land between delivery and ack", kills)
	}
}

// Scenario 7: 200 concurrent requests through two gateway processes
// against a balance that covers k of them: at most k are admitted.
func TestConcurrentAdmissionAcrossTwoGateways(t *testing.T) {
	// Every request costs exactly 1 prompt + 100 completion tokens; the
	// gateway's estimate (local prompt count + the 100-token cap) is at
	// least that, so k requests' holds exhaust the balance.
	const (
		completion = 100
		cost       = 1*priceIn/1_000_000 + completion*priceOut/1_000_000 // 201 µ
		k          = 20
		requests   = 200
	)
	s := startStack(t, stackOptions{Gateways: 2, MockArgs: []string{"-usage", "prompt=1,completion=" + strconv.Itoa(completion), "-latency-ms", "300"}})
	tn := s.setup(tenantOptions{TopupMicros: k*cost + cost/2})

	tr := newTraffic()
	var wg sync.WaitGroup
	startGate := make(chan struct{})
	for i := 0; i < requests; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startGate
			tr.add(chat(s.GatewayURLs[i%2], tn.Key, completion))
		}()
	}
	close(startGate)
	wg.Wait()
	admitted := tr.Accepted()
	t.Logf("RESULT scenario=7 requests=%d k=%d admitted=%d statuses=%v transport_errors=%d", requests, k, admitted, tr.statuses, tr.errors)
	if tr.errors != 0 {
		t.Errorf("%d requests got no answer", tr.errors)
	}
	if admitted > k {
		t.Errorf("%d requests admitted, the balance covers %d", admitted, k)
	}
	if admitted == 0 {
		t.Errorf("nothing admitted: %v", tr.statuses)
	}
	if refused := tr.statuses[http.StatusPaymentRequired]; admitted+refused != requests {
		t.Errorf("statuses %v: want only 2xx and 402", tr.statuses)
	}
	rep := checkInvariants(s, tr, 0)
	var balance int64
	if err := s.BillingDB.QueryRow(context.Background(), `SELECT balance_micros FROM users WHERE id = $1`, tn.UserID).Scan(&balance); err != nil {
		t.Fatal(err)
	}
	if want := int64(k*cost + cost/2 - admitted*cost); balance != want {
		t.Errorf("balance %d, want %d after %d requests of %d µ", balance, want, admitted, cost)
	}
	t.Logf("RESULT scenario=7 balance_left=%d %s", balance, rep)
}

// Scenario 10: the upstream answers every request 503. The retry budget
// keeps upstream attempts within 1.2× client requests, the breaker
// opens (later requests are refused CIRCUIT_OPEN without reaching the
// upstream), and nothing is billed.
func TestUpstreamAlways503(t *testing.T) {
	s := startStack(t, stackOptions{})
	tn := s.setup(tenantOptions{TopupMicros: 50_000_000, ProviderHeaders: map[string]string{"X-Mock-Status": "503"}})
	const requests = 60

	tr := newTraffic()
	var circuitOpen int
	for i := 0; i < requests; i++ {
		r := chat(s.GatewayURLs[0], tn.Key, 20)
		tr.add(r)
		if strings.Contains(string(r.Body), "CIRCUIT_OPEN") {
			circuitOpen++
		}
	}
	resp, err := http.Get(s.MockURL + "/__stats")
	if err != nil {
		t.Fatal(err)
	}
	var stats struct {
		Total int `json:"total"`
	}
	err = json.NewDecoder(resp.Body).Decode(&stats)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	ratio := float64(stats.Total) / requests
	t.Logf("RESULT scenario=10 requests=%d upstream_attempts=%d ratio=%.2f circuit_open=%d statuses=%v", requests, stats.Total, ratio, circuitOpen, tr.statuses)
	if tr.Accepted() != 0 {
		t.Errorf("%d requests succeeded against an upstream that only fails", tr.Accepted())
	}
	if ratio > 1.2 {
		t.Errorf("upstream attempts ÷ client requests = %d/%d = %.2f, want ≤ 1.2", stats.Total, requests, ratio)
	}
	if circuitOpen == 0 {
		t.Errorf("the breaker never opened: statuses %v", tr.statuses)
	}
	rep := checkInvariants(s, tr, 0)
	if rep.Debits != 0 {
		t.Errorf("%d debits for requests that all failed", rep.Debits)
	}
}

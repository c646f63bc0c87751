package chaos

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

// fullDisk is an outbox directory whose writes can be made to fail: a
// 256 KiB tmpfs of its own when the suite may mount one (root), which
// fills up under load like a full disk; otherwise a directory made
// read-only by Fail (chmod 0500, which binds a non-root gateway).
type fullDisk struct {
	Dir   string
	Mount bool // a tmpfs: it fills by itself
}

func newFullDisk(t *testing.T) *fullDisk {
	t.Helper()
	d := &fullDisk{Dir: filepath.Join(t.TempDir(), "outbox")}
	if err := os.Mkdir(d.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", d.Dir).CombinedOutput()
		if err != nil {
			t.Fatalf("mount a tmpfs for the outbox (root, so it should work): %v: %s", err, out)
		}
		d.Mount = true
		// Registered before the stack's: runs after the gateway stopped.
		t.Cleanup(func() {
			if out, err := exec.Command("umount", d.Dir).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v: %s", d.Dir, err, out)
			}
		})
	}
	return d
}

// Fail makes the outbox unwritable (tmpfs: it fills up on its own).
func (d *fullDisk) Fail(t *testing.T) {
	t.Helper()
	if d.Mount {
		return
	}
	if err := os.Chmod(d.Dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(d.Dir, 0o700) })
}

// lostIDs reads the request ids the gateway logged as lost
// ("events lost: outbox append failed").
func (s *stack) lostIDs(p *proc) map[string]bool {
	s.t.Helper()
	f, err := os.Open(p.log)
	if err != nil {
		s.t.Fatal(err)
	}
	defer f.Close()
	ids := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var l struct {
			Msg string   `json:"msg"`
			IDs []string `json:"request_ids"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || !strings.HasPrefix(l.Msg, "events lost") {
			continue
		}
		for _, id := range l.IDs {
			ids[id] = true
		}
	}
	return ids
}

// Scenario 16: NATS is down and the gateway's outbox cannot be written
// (its disk fills up). The documented behaviour (docs/gateway-service.md,
// "When the outbox cannot be written"): the requests already answered
// whose events could not be stored are counted in
// lurus_gateway_events_lost_total and logged with their ids, and from
// then on billable requests are refused 503 EVENTS_UNAVAILABLE rather
// than served unbilled. When NATS returns the outbox is replayed (which
// frees the disk) and the gateway serves again. Every answered request
// whose event was kept is settled once; the lost ones are exactly those
// counted, and their holds expire with the lease TTL (3 s here).
func TestOutboxDiskFullWhileNATSDown(t *testing.T) {
	const leaseTTL = 3 * time.Second
	disk := newFullDisk(t)
	s := startStack(t, stackOptions{
		MockArgs:      []string{"-usage", "prompt=1,completion=20", "-latency-ms", "5"},
		GatewayConfig: replaceLine("reservation_ttl: 10m", "reservation_ttl: 3s"),
		OutboxDir:     func(int) string { return disk.Dir },
	})
	tn := s.setup(tenantOptions{TopupMicros: 50_000_000})
	const lostMetric = `lurus_gateway_events_lost_total{subject="` + events.SubjectBillingUsage + `"}`

	tr := newTraffic()
	var mu sync.Mutex
	var phase string // "", "down", "up"
	statuses := map[string]map[string]int{"": {}, "down": {}, "up": {}}
	var firstRefusal time.Time
	load := startLoadObserved(s.GatewayURLs, []string{tn.Key}, 20, 4, tr, func(r reply) {
		k := "error"
		if r.Err == nil {
			k = strconv.Itoa(r.Status)
			var e struct {
				Error struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			if json.Unmarshal(r.Body, &e) == nil && e.Error.Code != "" {
				k += " " + e.Error.Code
			}
		}
		mu.Lock()
		defer mu.Unlock()
		statuses[phase][k]++
		if phase == "down" && strings.Contains(k, "EVENTS_UNAVAILABLE") && firstRefusal.IsZero() {
			firstRefusal = time.Now()
		}
	})
	s.eventually(30*time.Second, "requests accepted before the outage", func() bool { return tr.Accepted() >= 20 })

	if err := s.NATS.Stop(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	phase = "down"
	mu.Unlock()
	downAt := time.Now()
	disk.Fail(t)
	s.eventually(60*time.Second, "the gateway refuses with EVENTS_UNAVAILABLE", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return !firstRefusal.IsZero()
	})
	if v := s.gatewayMetric(0, lostMetric); v <= 0 {
		t.Errorf("%s = %v after the first refusal, want > 0 (the alert GatewayEventsLost fires on its increase)", lostMetric, v)
	}
	time.Sleep(2 * time.Second) // refusing under load for a while
	outboxBytes := s.gatewayMetric(0, "lurus_gateway_events_outbox_bytes")

	mu.Lock()
	phase = "up"
	mu.Unlock()
	s.NATS.Start()
	waitTCP(t, "nats-server", strings.TrimPrefix(s.NATSURL, "nats://"))
	upAt := time.Now()
	s.eventually(60*time.Second, "the gateway serves again after NATS returned", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return statuses["up"]["200"] > 0
	})
	recovered := time.Since(upAt)
	s.eventually(60*time.Second, "the outbox is replayed", func() bool {
		return s.gatewayMetric(0, "lurus_gateway_events_outbox_bytes") == 0
	})
	load.stop()

	// Which answered requests lost their event: those without a usage row
	// once everything else settled. They must be the ones the gateway
	// logged and counted.
	logged := s.lostIDs(s.Gateways[0])
	lostMetricValue := s.gatewayMetric(0, lostMetric)
	var unbilled []string
	tr.mu.Lock()
	for id := range tr.accepted {
		if logged[id] {
			unbilled = append(unbilled, id)
		}
	}
	tr.mu.Unlock()
	recorded := s.usageOf(unbilled)
	lost := 0
	for _, id := range unbilled {
		if _, ok := recorded[id]; !ok {
			lost++
			tr.mu.Lock()
			delete(tr.accepted, id) // documented loss: not expected in billing
			tr.mu.Unlock()
		}
	}
	// The lost holds expire with the TTL; a request purges them.
	time.Sleep(leaseTTL + 500*time.Millisecond)
	for range 5 {
		tr.add(chat(s.GatewayURLs[0], tn.Key, 20))
	}
	rep := checkInvariants(s, tr, 0)
	mode := "tmpfs 256 KiB"
	if !disk.Mount {
		mode = "chmod 0500"
	}
	t.Logf("RESULT scenario=16 disk=%q requests=%d accepted_billed=%d before=%v nats_down=%v nats_up=%v lost_served=%d lost_metric=%.0f logged_ids=%d outbox_bytes_when_full=%.0f first_refusal_after=%s served_again_after=%s %s",
		mode, tr.Total(), tr.Accepted(), statuses[""], statuses["down"], statuses["up"], lost, lostMetricValue, len(logged),
		outboxBytes, firstRefusal.Sub(downAt).Round(time.Millisecond), recovered.Round(time.Millisecond), rep)
	if lost == 0 {
		t.Errorf("no answered request lost its event: the outbox never failed")
	}
	if float64(lost) != lostMetricValue {
		t.Errorf("%d answered requests have no usage row, %s says %.0f", lost, lostMetric, lostMetricValue)
	}
	for k, n := range statuses["down"] {
		if k != "200" && k != "503 EVENTS_UNAVAILABLE" {
			t.Errorf("while NATS was down: %d × %s, want only 200 and 503 EVENTS_UNAVAILABLE", n, k)
		}
	}
}

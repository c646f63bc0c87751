package main

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

// TestRefusesWhileEventsAreLost: with NATS unreachable and the outbox
// unable to take a write (RLIMIT_FSIZE 0: every write to a file fails,
// like a full disk), the request whose event is lost is counted in
// lurus_gateway_events_lost_total, and billable requests are then
// refused 503 EVENTS_UNAVAILABLE instead of being served unbilled; once
// the outbox takes writes again they are served (NATS still down), and
// the events go to NATS when it is back. Scenario 16 of the fault suite.
func TestRefusesWhileEventsAreLost(t *testing.T) {
	oa := newUpstream(t)
	var px *testenv.Proxy
	h := startGateway(t, []internalapi.Provider{provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o")},
		func(c *conf.Config) {
			px = testenv.NewProxy(t, strings.TrimPrefix(c.NATS.URL, "nats://"))
			c.NATS.URL = "nats://" + px.Addr
		})
	chat := func() (int, string) {
		resp, body := h.do(http.MethodPost, "/v1/chat/completions", chatBody, nil)
		return resp.StatusCode, gjson.GetBytes(body, "error.code").Str
	}
	resp, _ := h.do(http.MethodPost, "/v1/chat/completions", chatBody, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("before the faults: %d", resp.StatusCode)
	}
	if u, _ := h.eventsFor(resp.Header.Get("X-Request-Id"), true); u == nil {
		t.Fatal("the first request's billing.usage did not reach NATS")
	}
	px.Cut()
	h.eventually(func() bool { r, _ := h.do(http.MethodGet, "/ready", "", nil); return r.StatusCode != http.StatusOK })

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	full := old
	full.Cur = 0
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &full); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer restore()

	// Served until an event is lost; from then on refused.
	var served, refused int
	for deadline := time.Now().Add(10 * time.Second); refused == 0; {
		switch st, code := chat(); {
		case st == http.StatusOK:
			served++
		case st == http.StatusServiceUnavailable && code == "EVENTS_UNAVAILABLE":
			refused++
		default:
			t.Fatalf("while events are lost: %d %s", st, code)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests served while their events were lost, none refused", served)
		}
	}
	if served == 0 {
		t.Errorf("no request was served before the loss: the first lost event is what shows it")
	}
	for i := 0; i < 3; i++ {
		if st, code := chat(); st != http.StatusServiceUnavailable || code != "EVENTS_UNAVAILABLE" {
			t.Fatalf("refusal %d: %d %s", i, st, code)
		}
	}
	// Every served request's event is counted once the publisher has
	// tried to store it.
	lost := func() int {
		m := regexp.MustCompile(`lurus_gateway_events_lost_total\{subject="billing.usage"\} (\d+)`).FindStringSubmatch(h.metrics())
		if m == nil {
			t.Fatal(`no lurus_gateway_events_lost_total{subject="billing.usage"}`)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	h.eventually(func() bool { return lost() >= served })
	if n := lost(); n != served {
		t.Errorf("%d billing.usage events counted lost, %d requests served with their events lost", n, served)
	}

	// Space again: a refusal's log.write reaches the outbox, and requests
	// are served (NATS still down), their events kept for NATS.
	restore()
	var id string
	h.eventually(func() bool {
		resp, _ := h.do(http.MethodPost, "/v1/chat/completions", chatBody, nil)
		id = resp.Header.Get("X-Request-Id")
		return resp.StatusCode == http.StatusOK
	})
	px.Restore()
	if u, _ := h.eventsFor(id, true); u == nil {
		t.Fatalf("request %s served after the disk came back: no billing.usage on NATS", id)
	}
}

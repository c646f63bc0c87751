package biz

import (
	"strings"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

func TestOriginPolicy(t *testing.T) {
	p := NewOriginPolicy([]string{"https://app.example", "http://localhost:5173", "https://*.lurus.cn", "https://*.ports.example:8443"})
	tests := []struct {
		origin     string
		allowEmpty bool
		ok         bool
	}{
		{"https://app.example", false, true},
		{"HTTPS://APP.EXAMPLE", false, true},
		{"http://app.example", false, false},
		{"https://app.example:444", false, false},
		{"http://localhost:5173", false, true},
		{"http://localhost:5174", false, false},
		{"https://console.lurus.cn", false, true},
		{"https://a.b.lurus.cn", false, true},
		{"https://lurus.cn", false, false},
		{"https://evillurus.cn", false, false},
		{"https://lurus.cn.evil.example", false, false},
		{"https://x.ports.example:8443", false, true},
		{"https://x.ports.example", false, false},
		{"null", false, false},
		{"", true, true},
		{"", false, false},
		{"https://user@app.example", false, false},
	}
	for _, tt := range tests {
		err := p.Check(tt.origin, tt.allowEmpty)
		if (err == nil) != tt.ok {
			t.Errorf("Check(%q, %v) = %v, want ok=%v", tt.origin, tt.allowEmpty, err, tt.ok)
		}
		if err != nil && apperr.ReasonOf(err) != apperr.ReasonOriginForbidden {
			t.Errorf("reason %v", apperr.ReasonOf(err))
		}
	}
}

func TestCheckDeviceID(t *testing.T) {
	for id, ok := range map[string]bool{
		"phone": true, "a": true, "A-b_c.d:e9": true, strings.Repeat("x", 128): true,
		"": false, strings.Repeat("x", 129): false, "has space": false, "ü": false, "a/b": false, "a\x00": false,
	} {
		if err := CheckDeviceID(id); (err == nil) != ok {
			t.Errorf("CheckDeviceID(%q) = %v", id, err)
		} else if err != nil && apperr.ReasonOf(err) != apperr.ReasonInvalidDeviceID {
			t.Errorf("reason %v", apperr.ReasonOf(err))
		}
	}
}

func TestTypeFilter(t *testing.T) {
	all, err := NewTypeFilter(nil)
	if err != nil || all.Types() != nil {
		t.Fatalf("empty filter: %v %v", all.Types(), err)
	}
	for _, typ := range append(events.UserEventTypes, "some.future.type") {
		if !all.Wants(typ) {
			t.Errorf("unfiltered refuses %s", typ)
		}
	}
	f, err := NewTypeFilter([]string{events.TypeBalanceChanged, events.TypeQuotaLow})
	if err != nil {
		t.Fatal(err)
	}
	for typ, want := range map[string]bool{
		events.TypeBalanceChanged: true, events.TypeQuotaLow: true, events.TypeQuotaUpdated: false,
		events.TypeUsageRecorded: false, "some.future.type": false,
	} {
		if f.Wants(typ) != want {
			t.Errorf("Wants(%s) = %v", typ, !want)
		}
	}
	if got := strings.Join(f.Types(), ","); got != "balance.changed,quota.low" {
		t.Errorf("Types = %s", got)
	}
	if _, err := NewTypeFilter([]string{"balance.changed", "nope"}); apperr.ReasonOf(err) != apperr.ReasonInvalidMessage || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown type: %v", err)
	}
}

func TestLimiter(t *testing.T) {
	l := NewLimiter(2, 3) // 2/s, burst 3
	t0 := time.Unix(0, 0)
	steps := []struct {
		at   time.Duration
		want bool
	}{
		{0, true}, {0, true}, {0, true}, {0, false}, // burst used up
		{400 * time.Millisecond, false}, // 0.8 token
		{500 * time.Millisecond, true},  // 1 token
		{500 * time.Millisecond, false},
		{10 * time.Second, true}, {10 * time.Second, true}, {10 * time.Second, true}, {10 * time.Second, false}, // refilled to burst only
	}
	for i, st := range steps {
		if got := l.Allow(t0.Add(st.at)); got != st.want {
			t.Fatalf("step %d at %v: Allow = %v", i, st.at, got)
		}
	}
}

type fakeSession struct{ causes chan CloseCause }

func (f *fakeSession) Close(c CloseCause) { f.causes <- c }

func newFakeSession() *fakeSession { return &fakeSession{causes: make(chan CloseCause, 4)} }

func TestSessionRegistry(t *testing.T) {
	h := NewSessionRegistry()
	a1, a2, b := newFakeSession(), newFakeSession(), newFakeSession()
	rmA1, _ := h.Add("usr_a", "key_1", a1)
	rmA2, _ := h.Add("usr_a", "key_2", a2)
	rmB, _ := h.Add("usr_b", "key_3", b)
	if n, u := h.Counts(); n != 3 || u != 2 {
		t.Fatalf("counts %d/%d", n, u)
	}
	if n := h.CloseKey("key_1", "usr_a"); n != 1 || <-a1.causes != CauseCredentialsChanged {
		t.Fatalf("CloseKey by key closed %d", n)
	}
	if n := h.CloseKey("key_3", ""); n != 1 || <-b.causes != CauseCredentialsChanged {
		t.Fatalf("CloseKey without user closed %d", n)
	}
	if n := h.CloseKey("", "usr_a"); n != 2 {
		t.Fatalf("CloseKey by user closed %d", n)
	}
	<-a1.causes
	<-a2.causes
	if n := h.CloseKey("", ""); n != 0 {
		t.Fatalf("empty CloseKey closed %d", n)
	}
	rmA1()
	rmA1() // idempotent
	if n, u := h.Counts(); n != 2 || u != 2 {
		t.Fatalf("after remove: %d/%d", n, u)
	}
	done := make(chan error)
	go func() { done <- h.Shutdown(t.Context()) }()
	if <-a2.causes != CauseShutdown || <-b.causes != CauseShutdown {
		t.Fatal("shutdown cause")
	}
	if _, err := h.Add("usr_c", "", newFakeSession()); apperr.ReasonOf(err) != apperr.ReasonShuttingDown {
		t.Fatalf("Add after shutdown: %v", err)
	}
	rmA2()
	rmB()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

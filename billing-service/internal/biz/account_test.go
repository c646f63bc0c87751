package biz

import (
	"errors"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/pricing"
)

var now = time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)

func types(evs []OutboxEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestChargeEventsAndAlertsFireOnce drives one account through a series
// of usages and checks the events of each step: quota.low and
// quota.exhausted fire on the first crossing only.
func TestChargeEventsAndAlertsFireOnce(t *testing.T) {
	u := &User{ID: "usr_1", Status: StatusActive, BalanceMicros: 10_000, QuotaLimitTokens: 1000,
		LowBalanceThresholdMicros: 3_000, PeriodStart: PeriodStart(now), Version: 7}
	steps := []struct {
		name   string
		tokens int64
		cost   int64
		status string
		want   []string
	}{
		{"plain usage", 100, 1000, events.StatusOK, []string{"usage.recorded", "balance.changed", "quota.updated"}},
		{"crosses 80% quota", 700, 1000, events.StatusOK, []string{"usage.recorded", "balance.changed", "quota.updated", "quota.low"}},
		{"above 80% again: no second quota.low", 50, 1000, events.StatusOK, []string{"usage.recorded", "balance.changed", "quota.updated"}},
		{"crosses low balance", 10, 5000, events.StatusOK, []string{"usage.recorded", "balance.changed", "quota.updated", "quota.low"}},
		{"quota used up and balance gone", 200, 3000, events.StatusOK, []string{"usage.recorded", "balance.changed", "quota.updated", "quota.exhausted", "quota.exhausted"}},
		{"rejected request changes nothing", 500, 0, events.StatusRejected, []string{}},
		{"zero tokens changes nothing", 0, 0, events.StatusOK, []string{}},
	}
	for _, st := range steps {
		a, err := NewAccount(u, Rules{QuotaLowPercent: 80}, now)
		if err != nil {
			t.Fatal(err)
		}
		before := *u
		us := events.Usage{RequestID: "r", UserID: u.ID, PromptTokens: st.tokens, Status: st.status}
		e, err := a.Charge(us, st.cost)
		if err != nil {
			t.Fatal(err)
		}
		if got := types(a.Events); !equal(got, st.want) {
			t.Errorf("%s: events %v, want %v", st.name, got, st.want)
		}
		if len(st.want) == 0 {
			if a.Changed || u.Version != before.Version || u.BalanceMicros != before.BalanceMicros {
				t.Errorf("%s: account changed", st.name)
			}
			continue
		}
		if u.Version != before.Version+1 {
			t.Errorf("%s: version %d, want %d (one bump per change)", st.name, u.Version, before.Version+1)
		}
		if e.AmountMicros != -st.cost || e.BalanceAfterMicros != u.BalanceMicros || u.BalanceMicros != before.BalanceMicros-st.cost {
			t.Errorf("%s: entry %+v, balance %d", st.name, e, u.BalanceMicros)
		}
		if u.LastEventID != a.Events[len(a.Events)-1].ID {
			t.Errorf("%s: last event id not the newest event", st.name)
		}
	}
}

// TestTopupRearmsBalanceAlerts: a top-up above the threshold re-arms
// quota.low(balance), so the next crossing is announced again.
func TestTopupRearmsBalanceAlerts(t *testing.T) {
	u := &User{ID: "usr_1", Status: StatusActive, BalanceMicros: 100, LowBalanceThresholdMicros: 1000,
		AlertFlags: AlertBalanceLow, PeriodStart: PeriodStart(now)}
	a, _ := NewAccount(u, Rules{}, now)
	if _, err := a.Post(KindTopup, 5000, "t"); err != nil {
		t.Fatal(err)
	}
	if u.AlertFlags&AlertBalanceLow != 0 || !equal(types(a.Events), []string{"balance.changed"}) {
		t.Fatalf("flags %b events %v", u.AlertFlags, types(a.Events))
	}
	a, _ = NewAccount(u, Rules{}, now)
	if _, err := a.Post(KindAdjust, -4500, "t"); err != nil {
		t.Fatal(err)
	}
	if !equal(types(a.Events), []string{"balance.changed", "quota.low"}) {
		t.Fatalf("events %v", types(a.Events))
	}
}

func TestPeriodRollResetsQuota(t *testing.T) {
	for _, tc := range []struct {
		name       string
		start      time.Time
		used       int64
		limit      int64
		wantUsed   int64
		wantEvents []string
		changed    bool
	}{
		{"same month", PeriodStart(now), 500, 1000, 500, []string{}, false},
		{"next month with quota", PeriodStart(now).AddDate(0, -1, 0), 500, 1000, 0, []string{"quota.updated"}, true},
		{"next month without quota", PeriodStart(now).AddDate(0, -2, 0), 500, 0, 0, []string{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &User{ID: "usr_1", Status: StatusActive, QuotaLimitTokens: tc.limit, QuotaUsedTokens: tc.used,
				PeriodStart: tc.start, AlertFlags: AlertQuotaLow | AlertQuotaExhausted}
			a, err := NewAccount(u, Rules{}, now)
			if err != nil {
				t.Fatal(err)
			}
			if u.QuotaUsedTokens != tc.wantUsed || a.Changed != tc.changed || !equal(types(a.Events), tc.wantEvents) {
				t.Fatalf("used %d changed %v events %v", u.QuotaUsedTokens, a.Changed, types(a.Events))
			}
			if tc.changed && (u.AlertFlags != 0 || !u.PeriodStart.Equal(PeriodStart(now))) {
				t.Fatalf("flags %b period %v", u.AlertFlags, u.PeriodStart)
			}
		})
	}
}

func TestPriceUsage(t *testing.T) {
	tbl := pricing.NewTable([]pricing.Price{{ModelPattern: "gpt-*", InputMicrosPerMTok: 1_000_000, OutputMicrosPerMTok: 4_000_000}},
		nil, map[string]int64{"vip": 5000}, 1)
	for _, tc := range []struct {
		name  string
		u     events.Usage
		group string
		want  int64
		err   error
	}{
		{"priced", events.Usage{Model: "gpt-4o", PromptTokens: 1000, CompletionTokens: 500, Status: events.StatusOK}, "", 3000, nil},
		{"group multiplier", events.Usage{Model: "gpt-4o", PromptTokens: 1000, CompletionTokens: 500}, "vip", 1500, nil},
		{"unpriced model is not free", events.Usage{Model: "llama", PromptTokens: 1}, "", 0, ErrNoPrice},
		{"rejected costs 0 even unpriced", events.Usage{Model: "llama", PromptTokens: 9, Status: events.StatusRejected}, "", 0, nil},
		{"no tokens costs 0", events.Usage{Model: "llama"}, "", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PriceUsage(tbl, tc.u, tc.group)
			if got != tc.want || !errors.Is(err, tc.err) {
				t.Fatalf("got %d, %v; want %d, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestCheckUsage(t *testing.T) {
	for _, tc := range []struct {
		u  events.Usage
		ok bool
	}{
		{events.Usage{RequestID: "r", UserID: "usr_1"}, true},
		{events.Usage{UserID: "usr_1"}, false},
		{events.Usage{RequestID: "r", UserID: "a.b"}, false},
		{events.Usage{RequestID: "r", UserID: "usr_1", CompletionTokens: -1}, false},
	} {
		if err := CheckUsage(tc.u); (err == nil) != tc.ok {
			t.Errorf("CheckUsage(%+v) = %v", tc.u, err)
		}
	}
}

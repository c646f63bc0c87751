package events

import "testing"

func TestNames(t *testing.T) {
	prod := NewNames("")
	if prod.Stream(StreamBilling) != "LURUS_BILLING" || prod.Subject(SubjectBillingUsage) != "billing.usage" ||
		prod.UserSubject("u1", TypeBalanceChanged) != "events.user.u1.balance.changed" ||
		prod.DeadSubject(StreamLogs) != "LURUS_LOGS.dead" || prod.AllUsersFilter() != "events.user.>" {
		t.Fatal("production names changed: they are a contract")
	}
	ns := NewNames("t-1a")
	if ns.Stream(StreamEvents) != "T_1A_LURUS_EVENTS" || ns.UserFilter("u9") != "t-1a.events.user.u9.>" {
		t.Fatalf("namespaced: %s %s", ns.Stream(StreamEvents), ns.UserFilter("u9"))
	}
	u, typ, ok := ns.ParseUserSubject("t-1a.events.user.u9.quota.low")
	if !ok || u != "u9" || typ != "quota.low" {
		t.Fatalf("parse: %s %s %v", u, typ, ok)
	}
	if _, _, ok := prod.ParseUserSubject("t-1a.events.user.u9.quota.low"); ok {
		t.Fatal("parsed another namespace's subject")
	}
	for s, want := range map[string]bool{"usr_01H": true, "": false, "a.b": false, "a*": false, "a b": false, "a>": false} {
		if ValidToken(s) != want {
			t.Errorf("ValidToken(%q) != %v", s, want)
		}
	}
}

package biz

import (
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit"
)

func TestLimitRules(t *testing.T) {
	rules := LimitRules{Groups: map[string]ratelimit.Limits{
		DefaultGroup: {RPM: 60},
		"free":       {RPM: 10, TPM: 1000, Concurrency: 2},
		"open":       {},
	}}
	lim := func(rpm, tpm, conc int64) ratelimit.Limits {
		return ratelimit.Limits{RPM: rpm, TPM: tpm, Concurrency: conc}
	}
	tests := []struct {
		name      string
		group     string
		user, key ratelimit.Limits
		wantUser  ratelimit.Limits
		wantKey   ratelimit.Limits
	}{
		{"group defaults", "free", lim(0, 0, 0), lim(0, 0, 0), lim(10, 1000, 2), lim(10, 1000, 2)},
		{"own value wins over the group, both ways", "free", lim(100, 500, 0), lim(0, 0, 0), lim(100, 500, 2), lim(100, 500, 2)},
		{"unlisted group takes default", "gold", lim(0, 0, 0), lim(0, 0, 0), lim(60, 0, 0), lim(60, 0, 0)},
		{"listed empty group is unlimited", "open", lim(0, 0, 0), lim(0, 0, 0), lim(0, 0, 0), lim(0, 0, 0)},
		{"key below user", "open", lim(50, 0, 4), lim(5, 200, 1), lim(50, 0, 4), lim(5, 200, 1)},
		{"key above user is clamped", "free", lim(0, 0, 0), lim(99, 5000, 1), lim(10, 1000, 2), lim(10, 1000, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &User{Group: tt.group, Limits: tt.user}
			k := &Key{Limits: tt.key}
			if got := rules.User(u); got != tt.wantUser {
				t.Errorf("User = %+v, want %+v", got, tt.wantUser)
			}
			if got := rules.Key(k, u); got != tt.wantKey {
				t.Errorf("Key = %+v, want %+v", got, tt.wantKey)
			}
		})
	}
	if got := (LimitRules{}).User(&User{Group: "x", Limits: lim(3, 0, 0)}); got != lim(3, 0, 0) {
		t.Errorf("no rules: %+v", got)
	}
}

package redisstore

import (
	"context"
	"fmt"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
)

func TestApplyBatchWritesStatesAndReleasesEveryReservation(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, u := range []string{"u1", "u2"} {
		mustApply(t, s, admission.Account{UserID: u, BalanceMicros: 1000, Active: true, Version: 1})
		for i := 0; i < 3; i++ {
			if res, err := s.Reserve(ctx, admission.Reservation{ID: fmt.Sprintf("%s-r%d", u, i), UserID: u, KeyID: "k", Micros: 100, Tokens: 10}); err != nil || res.Code != admission.OK {
				t.Fatalf("reserve: %v %v", res, err)
			}
		}
	}
	ups := []admission.Update{
		{Account: admission.Account{UserID: "u1", BalanceMicros: 700, Active: true, Version: 2, KeySpentMicros: map[string]int64{"k": 300}},
			ReleaseIDs: []string{"u1-r0", "u1-r1", "u1-r2"}},
		{Account: admission.Account{UserID: "u2", BalanceMicros: 900, Active: true, Version: 0}, // stale: state kept, holds still released
			ReleaseIDs: []string{"u2-r1"}},
		{Account: admission.Account{UserID: "u3", BalanceMicros: 5, Active: true, Version: 1}},
	}
	for i := 0; i < 2; i++ { // a retried batch changes nothing
		if err := s.ApplyBatch(ctx, ups); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		user               string
		bal, rmic, version int64
	}{
		{"u1", 700, 0, 2},
		{"u2", 1000, 200, 1},
		{"u3", 5, 0, 1},
	}
	for _, tt := range tests {
		st, err := s.Get(ctx, tt.user)
		if err != nil {
			t.Fatal(err)
		}
		if st.BalanceMicros != tt.bal || st.ReservedMicros != tt.rmic || st.Version != tt.version {
			t.Errorf("%s: %+v, want bal %d reserved %d version %d", tt.user, st, tt.bal, tt.rmic, tt.version)
		}
	}
}

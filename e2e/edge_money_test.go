package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

// post sends a JSON body with the given headers and returns status and body.
func post(t *testing.T, url string, body any, hdr ...string) (int, []byte) {
	t.Helper()
	return testenv.SendJSON(t, http.MethodPost, url, body, hdr...)
}

// balance returns the user's balance and checks that it equals the sum of
// the user's ledger entries.
func (s *stack) balance(userID string) int64 {
	s.t.Helper()
	var u struct {
		BalanceMicros int64 `json:"balance_micros"`
	}
	s.admin(http.MethodGet, s.billing+"/api/v1/billing/users/"+userID, nil, &u, http.StatusOK)
	var sum int64
	cursor := ""
	for {
		var page struct {
			Items      []ledgerEntry `json:"items"`
			NextCursor *string       `json:"next_cursor"`
		}
		s.admin(http.MethodGet, s.billing+"/api/v1/billing/users/"+userID+"/ledger?limit=500&cursor="+cursor, nil, &page, http.StatusOK)
		for _, e := range page.Items {
			sum += e.AmountMicros
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	if sum != u.BalanceMicros {
		s.t.Fatalf("balance %d != sum of ledger entries %d", u.BalanceMicros, sum)
	}
	return u.BalanceMicros
}

// TestEdgeMoneyOverflow reproduces issue 10's integer overflow against the
// running services. Two top-ups of 2^62 micro-USD used to wrap the balance
// negative: both are refused with 400 AMOUNT_OUT_OF_RANGE. An upstream
// that reports absurd usage (20 million prompt tokens for one chat call)
// is not settled: billing dead-letters the usage and counts it in
// billing_usage_rejected_total, the user is not charged, and the hold of
// the request does not stay.
func TestEdgeMoneyOverflow(t *testing.T) {
	s := startStack(t)
	// every provider's upstream (the mock) now reports absurd usage
	s.providerHeaders = map[string]string{"X-Mock-Usage": "prompt=20000000,completion=10"}
	tn := s.setup()

	for i, idem := range []string{"exploit-1", "exploit-2"} {
		status, body := post(t, s.billing+"/api/v1/billing/users/"+tn.userID+"/topup", map[string]any{"amount_micros": int64(1) << 62},
			"Authorization", "Bearer "+adminToken, "Idempotency-Key", idem)
		if status != http.StatusBadRequest || !strings.Contains(string(body), `"reason":"AMOUNT_OUT_OF_RANGE"`) {
			t.Fatalf("top-up %d of 2^62: %d %s, want 400 AMOUNT_OUT_OF_RANGE", i+1, status, body)
		}
	}
	if b := s.balance(tn.userID); b != topup {
		t.Fatalf("balance %d after the refused top-ups, want %d", b, topup)
	}

	status, body := post(t, s.gateway+"/v1/chat/completions", map[string]any{"model": "gpt-4o-mini", "max_tokens": 16,
		"messages": []map[string]string{{"role": "user", "content": "one two three"}}}, "Authorization", "Bearer "+tn.key)
	if status != http.StatusOK || !strings.Contains(string(body), `"prompt_tokens":20000000`) {
		t.Fatalf("chat: %d %s", status, body)
	}
	s.eventually("billing dead-letters the absurd usage", func() bool {
		_, m := getWithKey(s.billing+"/metrics", "")
		return strings.Contains(string(m), `billing_usage_rejected_total{reason="tokens"} 1`+"\n")
	})
	s.eventually("the request's hold is released", func() bool {
		status, b := getWithKey(s.billing+"/api/v1/billing/me", tn.key)
		var me struct {
			ReservedMicros int64 `json:"reserved_micros"`
		}
		return status == 200 && json.Unmarshal(b, &me) == nil && me.ReservedMicros == 0
	})
	if b := s.balance(tn.userID); b != topup {
		t.Fatalf("balance %d after the absurd usage, want %d (not settled)", b, topup)
	}
}

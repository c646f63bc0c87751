package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// The strict reading of request bodies (issue 10): duplicate keys, and the
// output cap the hold prices being the cap upstream is told.

// edgeBodyMockUsage makes the mock report this many completion tokens for
// every request: an upstream that generates up to the cap it was told
// (16384 is gpt-4o's limit in the shipped table).
const edgeBodyMockUsage = 16384

// edgeBodyRequest is one request the mock recorded (GET /__requests).
type edgeBodyRequest struct {
	Path       string           `json:"path"`
	Model      string           `json:"model"`
	OutputCaps map[string]int64 `json:"output_caps"`
}

// mockRequests returns the newest limit requests the mock recorded
// (limit 0: all it keeps).
func (s *stack) mockRequests(limit int) []edgeBodyRequest {
	s.t.Helper()
	resp, err := http.Get(fmt.Sprintf("%s/__requests?limit=%d", s.mock, limit))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Items []edgeBodyRequest `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		s.t.Fatal(err)
	}
	return page.Items
}

// edgeBodyUser creates a user with the given balance and credit limit and
// a key restricted to models (none: any), and returns both.
func (s *stack) edgeBodyUser(name string, balance, credit int64, models ...string) tenant {
	s.t.Helper()
	var user struct {
		ID string `json:"id"`
	}
	s.admin(http.MethodPost, s.billing+"/api/v1/billing/users", map[string]any{"name": name, "email": name + "@example.com",
		"credit_limit_micros": credit}, &user, http.StatusCreated)
	if balance > 0 {
		s.admin(http.MethodPost, s.billing+"/api/v1/billing/users/"+user.ID+"/topup",
			map[string]any{"amount_micros": balance, "note": "e2e"}, nil, http.StatusCreated, "Idempotency-Key", "edge-body-"+name)
	}
	keyReq := map[string]any{"name": name}
	if len(models) > 0 {
		keyReq["models"] = models
	}
	var key struct {
		Key string `json:"key"`
	}
	s.admin(http.MethodPost, s.billing+"/api/v1/billing/users/"+user.ID+"/keys", keyReq, &key, http.StatusCreated)
	return tenant{userID: user.ID, key: key.Key}
}

// relayAs sends body to path of the gateway with key in the header the
// format uses, and returns the status, the X-Request-Id and the body.
func (s *stack) relayAs(key, path, body string) (int, string, []byte) {
	req, _ := http.NewRequest(http.MethodPost, s.gateway+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	switch {
	case strings.HasPrefix(path, "/v1beta"):
		req.Header.Set("x-goog-api-key", key)
	case strings.HasPrefix(path, "/v1/messages"):
		req.Header.Set("x-api-key", key)
		req.Header.Set("anthropic-version", "2023-06-01")
	default:
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Request-Id"), b
}

// edgeBodyAccount returns a user's balance and the sum of its ledger
// entries.
func (s *stack) edgeBodyAccount(userID string) (balance, ledgerSum int64) {
	s.t.Helper()
	var u struct {
		BalanceMicros int64 `json:"balance_micros"`
	}
	s.admin(http.MethodGet, s.billing+"/api/v1/billing/users/"+userID, nil, &u, http.StatusOK)
	cursor := ""
	for {
		var page struct {
			Items      []ledgerEntry `json:"items"`
			NextCursor string        `json:"next_cursor"`
		}
		s.admin(http.MethodGet, s.billing+"/api/v1/billing/users/"+userID+"/ledger?limit=200&cursor="+cursor, nil, &page, http.StatusOK)
		for _, e := range page.Items {
			ledgerSum += e.AmountMicros
		}
		if page.NextCursor == "" {
			return u.BalanceMicros, ledgerSum
		}
		cursor = page.NextCursor
	}
}

// checkLedger fails the test unless the user's ledger sums to its balance.
func (s *stack) checkLedger(userID string) int64 {
	s.t.Helper()
	bal, sum := s.edgeBodyAccount(userID)
	if bal != sum {
		s.t.Fatalf("user %s: balance %d, ledger sum %d", userID, bal, sum)
	}
	return bal
}

// TestEdgeBodyDuplicateModel: the duplicate-model exploit against the real
// stack. A key allowed only cheap models sends the cheap model first and
// an expensive one last (a last-key-wins upstream runs the last): 400
// DUPLICATE_KEY in each format, nothing reaches upstream, nothing billed.
func TestEdgeBodyDuplicateModel(t *testing.T) {
	s := startStack(t)
	s.setup()
	tn := s.edgeBodyUser("dupkey", 1_000_000, 0, "gpt-4o-mini", "claude-3-5-haiku*", "gemini-2.0-flash")
	// The cheap model alone goes through with this key.
	if st, _, b := s.relayAs(tn.key, "/v1/chat/completions", `{"model":"gpt-4o-mini","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`); st != 200 {
		t.Fatalf("allowed model: %d %s", st, b)
	}
	before := len(s.mockRequests(0))
	for _, c := range []struct{ path, body, reason string }{
		{"/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"model":"gpt-4o"}`, `"code":"DUPLICATE_KEY"`},
		{"/v1/chat/completions", `{"model":"gpt-4o-mini","mod\u0065l":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`, `"code":"DUPLICATE_KEY"`},
		{"/v1/messages", `{"model":"claude-3-5-haiku-latest","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"model":"claude-opus-4-1"}`, `"reason":"DUPLICATE_KEY"`},
		{"/v1beta/models/gemini-2.0-flash:generateContent", `{"contents":[{"parts":[{"text":"hi"}]}],"generationConfig":{"maxOutputTokens":5,"maxOutputTokens":65536}}`, `"reason":"DUPLICATE_KEY"`},
	} {
		st, _, b := s.relayAs(tn.key, c.path, c.body)
		if st != http.StatusBadRequest || !strings.Contains(string(b), c.reason) {
			t.Fatalf("%s %s: %d %s, want 400 with %s", c.path, c.body, st, b, c.reason)
		}
	}
	if after := len(s.mockRequests(0)); after != before {
		t.Fatalf("%d refused requests reached upstream", after-before)
	}
	s.eventually("the allowed request is settled", func() bool {
		bal, _ := s.edgeBodyAccount(tn.userID)
		return bal < 1_000_000
	})
	s.checkLedger(tn.userID)
}

// TestEdgeBodyUpstreamGetsTheCap: a chat request without max_tokens, and
// one with only max_output_tokens (which chat completions ignore), reach
// upstream with max_completion_tokens set to the cap that was held (the
// model's limit). The mock then reports as much output as it was allowed:
// the debit stays within the hold.
func TestEdgeBodyUpstreamGetsTheCap(t *testing.T) {
	s := startStack(t)
	s.providerHeaders = map[string]string{"X-Mock-Usage": fmt.Sprintf("completion=%d", edgeBodyMockUsage)}
	tn := s.setup()
	for _, body := range []string{
		`{"model":"gpt-4o","messages":[{"role":"user","content":"write forever"}]}`,
		`{"model":"gpt-4o","max_output_tokens":1,"stream":true,"messages":[{"role":"user","content":"write forever"}]}`,
	} {
		st, id, b := s.relayAs(tn.key, "/v1/chat/completions", body)
		if st != 200 {
			t.Fatalf("%s: %d %s", body, st, b)
		}
		rec := s.mockRequests(1)[0]
		if rec.Model != "gpt-4o" || rec.OutputCaps["max_completion_tokens"] != edgeBodyMockUsage {
			t.Fatalf("upstream got %+v, want max_completion_tokens=%d", rec, edgeBodyMockUsage)
		}
		if v, ok := rec.OutputCaps["max_output_tokens"]; strings.Contains(body, "max_output_tokens") && v != 1 {
			t.Errorf("the client's own field was changed: %d %v", v, ok)
		}
		// The hold: body bytes / 3 + 1 prompt tokens and the cap, priced.
		hold := cost(int64(len(body)/3+1), edgeBodyMockUsage, 0, 0)
		debit := -s.debit(tn.userID, id)
		if debit <= 0 || debit > hold {
			t.Fatalf("%s: debit %d, hold %d", body, debit, hold)
		}
	}
	s.checkLedger(tn.userID)
}

// TestEdgeBodyParallelOverdraw: five parallel requests with
// "max_output_tokens":1 (ignored by chat completions) against a balance
// that covers three holds, from an upstream that generates as much as it
// is allowed. Before, each held one output token and the user ended deep
// below zero; now each holds the cap upstream is told, so what runs is
// paid for: the balance ends ≥ −credit limit and the ledger adds up.
func TestEdgeBodyParallelOverdraw(t *testing.T) {
	const balance, credit = 100_000, 1_000
	s := startStack(t)
	s.providerHeaders = map[string]string{"X-Mock-Usage": fmt.Sprintf("completion=%d", edgeBodyMockUsage)}
	s.setup()
	tn := s.edgeBodyUser("tiny", balance, credit)
	body := `{"model":"gpt-4o","max_output_tokens":1,"stream":true,"messages":[{"role":"user","content":"write forever"}]}`
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok, poor int
		ids      []string
	)
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, id, b := s.relayAs(tn.key, "/v1/chat/completions", body)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case st == 200:
				ok++
				ids = append(ids, id)
			case st == http.StatusPaymentRequired && strings.Contains(string(b), "INSUFFICIENT_BALANCE"):
				poor++
			default:
				t.Errorf("status %d %s", st, b)
			}
		}()
	}
	wg.Wait()
	hold := cost(int64(len(body)/3+1), edgeBodyMockUsage, 0, 0)
	if ok == 0 || int64(ok)*hold > balance+credit || poor == 0 {
		t.Fatalf("%d admitted, %d refused; a hold is %d of %d available", ok, poor, hold, balance+credit)
	}
	for _, id := range ids {
		s.debit(tn.userID, id)
	}
	if bal := s.checkLedger(tn.userID); bal < -credit {
		t.Fatalf("balance %d below the credit limit %d", bal, -credit)
	}
}

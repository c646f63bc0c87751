package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// Overdraw through an upstream that ignores the output cap: the mock
// streams 8,000 chunks (8,000 tokens by its own count) whatever the cap,
// against a balance that covers the 5,000 output tokens the request
// asks for. The gateway must end the stream with the caller's max-tokens
// terminal event once 5,000 tokens are delivered, and bill only what was
// delivered: the balance never goes below −credit limit, the debit is the
// delivered usage priced, and the ledger still sums to the balance.
func TestEdgeStreamCutAtHeldOutput(t *testing.T) {
	s := startStack(t)
	const streamed, held = 8000, 5000
	tn := s.setupWith(map[string]string{"X-Mock-Chunks": fmt.Sprint(streamed)})
	cases := []struct {
		name, path, body, textPath string
		auth                       func(*http.Request)
		terminal                   func(body string) bool
	}{
		{name: "openai chat", path: "/v1/chat/completions",
			body:     `{"model":"gpt-4o","stream":true,"max_tokens":5000,"messages":[{"role":"user","content":"count to ten thousand"}]}`,
			textPath: "choices.0.delta.content",
			auth:     func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tn.key) },
			terminal: func(b string) bool {
				return strings.Contains(b, `"finish_reason":"length"`) && strings.HasSuffix(b, "data: [DONE]\n\n")
			}},
		{name: "anthropic", path: "/v1/messages",
			body:     `{"model":"claude-sonnet-4-5","stream":true,"max_tokens":5000,"messages":[{"role":"user","content":"count to ten thousand"}]}`,
			textPath: "delta.text",
			auth: func(r *http.Request) {
				r.Header.Set("x-api-key", tn.key)
				r.Header.Set("anthropic-version", "2023-06-01")
			},
			terminal: func(b string) bool {
				return strings.Contains(b, `"stop_reason":"max_tokens"`) &&
					strings.HasSuffix(b, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
			}},
		{name: "gemini", path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
			body:     `{"contents":[{"role":"user","parts":[{"text":"count to ten thousand"}]}],"generationConfig":{"maxOutputTokens":5000}}`,
			textPath: "candidates.0.content.parts.0.text",
			auth:     func(r *http.Request) { r.Header.Set("x-goog-api-key", tn.key) },
			terminal: func(b string) bool { return strings.Contains(b, `"finishReason":"MAX_TOKENS"`) }},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// A balance that covers the prompt (at most one token per
			// byte) and 5,000 output tokens, nothing more.
			s.settled(tn)
			cover := cost(int64(len(c.body))+1, held, 0, 0)
			s.setBalance(tn, cover, fmt.Sprintf("edge-stream-%d", i))

			req, _ := http.NewRequest(http.MethodPost, s.gateway+c.path, strings.NewReader(c.body))
			req.Header.Set("Content-Type", "application/json")
			c.auth(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, %v: %s", resp.StatusCode, err, raw)
			}
			body := string(raw)
			if !c.terminal(body) {
				t.Errorf("the stream does not end with the max-tokens terminal: %q", body[max(0, len(body)-500):])
			}
			chunks := 0
			var text strings.Builder
			for _, line := range strings.Split(body, "\n") {
				if d, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "data: "); ok {
					if v := gjson.Get(d, c.textPath).Str; v != "" {
						text.WriteString(v)
						chunks++
					}
				}
			}
			if chunks == 0 || chunks >= streamed || !strings.HasPrefix(mockReply(streamed), text.String()) {
				t.Errorf("delivered %d of %d chunks", chunks, streamed)
			}

			id := resp.Header.Get("X-Request-Id")
			debit := s.debit(tn.userID, id)
			u := s.usageRecord(tn.userID, id)
			// Every delivered chunk is at least one token; no more than
			// the 5,000 held are billed.
			if u.CompletionTokens < int64(chunks) || u.CompletionTokens > held || u.PromptTokens <= 0 {
				t.Errorf("billed %d prompt + %d completion tokens for %d delivered chunks (held %d)",
					u.PromptTokens, u.CompletionTokens, chunks, held)
			}
			if want := -cost(u.PromptTokens, u.CompletionTokens, u.CachedTokens, u.CacheWriteTokens); debit != want {
				t.Errorf("debit %d, want the delivered usage priced: %d", debit, want)
			}
			bal, credit := s.ledgerMatchesBalance(tn)
			if bal < -credit {
				t.Errorf("balance %d below −credit limit %d", bal, credit)
			}
		})
	}
}

// mockReply is the whole reply of n mock chunks: "tok0 tok1 … ".
func mockReply(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("tok" + strconv.Itoa(i) + " ")
	}
	return b.String()
}

// usageRow is the part of a settled usage record the edge tests read.
type usageRow struct {
	RequestID        string `json:"request_id"`
	PromptTokens     int64  `json:"prompt_tokens"`
	CompletionTokens int64  `json:"completion_tokens"`
	CachedTokens     int64  `json:"cached_tokens"`
	CacheWriteTokens int64  `json:"cache_write_tokens"`
	UsageSource      string `json:"usage_source"`
}

// usageRecord returns the settled usage record of a request.
func (s *stack) usageRecord(userID, requestID string) usageRow {
	s.t.Helper()
	var page struct {
		Items []usageRow `json:"items"`
	}
	s.admin(http.MethodGet, s.billing+"/api/v1/billing/usage?limit=200&user_id="+userID, nil, &page, http.StatusOK)
	for _, u := range page.Items {
		if u.RequestID == requestID {
			return u
		}
	}
	s.t.Fatalf("no usage record for %s", requestID)
	return usageRow{}
}

// setBalance adjusts a user's balance to exactly micros.
func (s *stack) setBalance(tn tenant, micros int64, idem string) {
	s.t.Helper()
	var me struct {
		BalanceMicros int64 `json:"balance_micros"`
	}
	s.admin(http.MethodGet, s.billing+"/api/v1/billing/users/"+tn.userID, nil, &me, http.StatusOK)
	if d := micros - me.BalanceMicros; d != 0 {
		s.admin(http.MethodPost, s.billing+"/api/v1/billing/users/"+tn.userID+"/adjust",
			map[string]any{"amount_micros": d, "note": "edge test"}, nil, http.StatusCreated, "Idempotency-Key", idem)
	}
}

// ledgerMatchesBalance checks that the sum of the user's ledger entries
// equals the balance, and returns the balance and credit limit.
func (s *stack) ledgerMatchesBalance(tn tenant) (balance, credit int64) {
	s.t.Helper()
	var page struct {
		Items []ledgerEntry `json:"items"`
	}
	s.admin(http.MethodGet, s.billing+"/api/v1/billing/users/"+tn.userID+"/ledger?limit=200", nil, &page, http.StatusOK)
	var sum int64
	for _, e := range page.Items {
		sum += e.AmountMicros
	}
	var me struct {
		BalanceMicros     int64 `json:"balance_micros"`
		CreditLimitMicros int64 `json:"credit_limit_micros"`
	}
	s.admin(http.MethodGet, s.billing+"/api/v1/billing/users/"+tn.userID, nil, &me, http.StatusOK)
	if me.BalanceMicros != sum {
		s.t.Errorf("balance %d != sum of ledger entries %d", me.BalanceMicros, sum)
	}
	return me.BalanceMicros, me.CreditLimitMicros
}

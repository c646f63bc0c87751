package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// routeMockRequest is one entry of mock-upstream's GET /__requests.
type routeMockRequest struct {
	Seq    uint64 `json:"seq"`
	Method string `json:"method"`
	Path   string `json:"path"`
	URI    string `json:"uri"`
}

// routeMockRequests returns what reached the mock upstream after seq.
func (s *stack) routeMockRequests(after uint64) []routeMockRequest {
	s.t.Helper()
	resp, err := http.Get(s.mock + "/__requests?limit=1000")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Items []routeMockRequest `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		s.t.Fatal(err)
	}
	var out []routeMockRequest
	for _, r := range page.Items {
		if r.Seq > after {
			out = append(out, r)
		}
	}
	return out
}

// routeLastSeq is the newest request number the mock has seen.
func (s *stack) routeLastSeq() uint64 {
	var last uint64
	for _, r := range s.routeMockRequests(0) {
		last = max(last, r.Seq)
	}
	return last
}

// routeLedgerBalanced checks that the sum of the user's ledger entries
// equals the balance billing reports.
func (s *stack) routeLedgerBalanced(userID string) {
	s.t.Helper()
	var page struct {
		Items []ledgerEntry `json:"items"`
	}
	s.admin(http.MethodGet, s.billing+"/api/v1/billing/users/"+userID+"/ledger?limit=200", nil, &page, http.StatusOK)
	var sum int64
	for _, e := range page.Items {
		sum += e.AmountMicros
	}
	var user struct {
		BalanceMicros int64 `json:"balance_micros"`
	}
	s.admin(http.MethodGet, s.billing+"/api/v1/billing/users/"+userID, nil, &user, http.StatusOK)
	if user.BalanceMicros != sum {
		s.t.Errorf("balance %d != sum of ledger entries %d", user.BalanceMicros, sum)
	}
}

// routePost sends a raw request path (sent exactly as written: Go keeps a
// valid percent-encoding as it is) with the given headers.
func (s *stack) routePost(path, body string, hdr map[string]string) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.gateway+path, bytes.NewReader([]byte(body)))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestGeminiRouteExploitsAgainstTheStack replays issue 10's route holes
// against the real services with a user whose balance is negative: the
// streamGenerateContent-disguised-as-countTokens path once streamed a full
// answer for free, and the %3F / %23 / %252F.. / %2F variants sent the
// provider's key to other upstream paths. Each must be refused with 400
// in Gemini's format, nothing may reach the mock upstream, no stream may
// be delivered, and the ledger must still add up to the balance.
func TestGeminiRouteExploitsAgainstTheStack(t *testing.T) {
	s := startStack(t)
	tn := s.setup()
	// Spend the whole top-up and a little more: the balance is negative.
	s.admin(http.MethodPost, s.billing+"/api/v1/billing/users/"+tn.userID+"/adjust",
		map[string]any{"amount_micros": -topup - 1000, "note": "edge route: negative balance"}, nil, http.StatusCreated,
		"Idempotency-Key", "edge-route-negative")
	gemini := map[string]string{"x-goog-api-key": tn.key}
	body := `{"contents":[{"parts":[{"text":"one two three"}]}]}`
	before := s.routeLastSeq()

	for path, reason := range map[string]string{
		"/v1beta/models/gemini-2.5-pro:streamGenerateContent%3Falt=sse%26:countTokens":  "INVALID_MODEL_ACTION",
		"/v1beta/models/gemini-2.5-pro:streamGenerateContent%3Falt=sse%26:countTokens?": "INVALID_MODEL_ACTION",
		"/v1beta/models/gemini-2.5-pro:generateContent%23:countTokens":                  "INVALID_MODEL_ACTION",
		"/v1beta/models/gemini-2.5-pro%3Falt=sse%26:countTokens":                        "INVALID_MODEL_NAME",
		"/v1beta/models/gemini-2.5-pro%23:countTokens":                                  "INVALID_MODEL_NAME",
		"/v1beta/models/gemini-2.5-pro%252F..%252F..%252F..%252Fzz:generateContent":     "INVALID_MODEL_NAME",
		"/v1beta/models/gemini-2.5-pro%2F..%2F..%2F..%2Fzz:generateContent":             "INVALID_MODEL_NAME",
		"/v1beta/models/..%2F..%2F..%2Fzz:generateContent":                              "INVALID_MODEL_NAME",
		"/v1beta/models/gemini-2.5-pro/../../../zz:generateContent":                     "INVALID_MODEL_NAME",
		"/v1beta/models/gemini-2.5-pro%25:countTokens":                                  "INVALID_MODEL_NAME",
		"/v1beta/models/gemini-2.5-pro:streamGenerateContent:countTokens":               "INVALID_MODEL_ACTION",
	} {
		status, out := s.routePost(path, body, gemini)
		if status != http.StatusBadRequest || gjson.GetBytes(out, "error.code").Int() != 400 ||
			gjson.GetBytes(out, "error.status").Str != "INVALID_ARGUMENT" ||
			gjson.GetBytes(out, "error.details.0.reason").Str != reason {
			t.Errorf("%s: %d %s, want 400 %s in Gemini's format", path, status, out, reason)
		}
		if bytes.Contains(out, []byte("candidates")) || bytes.Contains(out, []byte("tok0")) {
			t.Errorf("%s: generation delivered: %s", path, out)
		}
	}
	if reached := s.routeMockRequests(before); len(reached) != 0 {
		t.Fatalf("refused requests reached the upstream: %+v", reached)
	}

	// The honest forms: generation is refused for the negative balance
	// (402) and never reaches upstream; countTokens is free and reaches
	// upstream as exactly that action.
	status, out := s.routePost("/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", body, gemini)
	if status != http.StatusPaymentRequired || gjson.GetBytes(out, "error.details.0.reason").Str != "INSUFFICIENT_BALANCE" {
		t.Errorf("stream with a negative balance: %d %s", status, out)
	}
	status, out = s.routePost("/v1beta/models/gemini-2.5-pro:countTokens", body, gemini)
	if status != http.StatusOK || !gjson.GetBytes(out, "totalTokens").Exists() {
		t.Errorf("countTokens: %d %s", status, out)
	}
	reached := s.routeMockRequests(before)
	if len(reached) != 1 || reached[0].URI != "/v1beta/models/gemini-2.5-pro:countTokens" {
		t.Fatalf("upstream saw %+v, want only the countTokens call", reached)
	}

	// ?key= authenticates only on /v1beta: elsewhere it is ignored.
	status, out = s.routePost("/v1/chat/completions?key="+tn.key,
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}`, nil)
	if status != http.StatusUnauthorized || gjson.GetBytes(out, "error.code").Str != "MISSING_CREDENTIALS" {
		t.Errorf("?key= on /v1/chat/completions: %d %s, want 401 MISSING_CREDENTIALS", status, out)
	}
	if strings.Contains(string(out), tn.key) {
		t.Error("the key was echoed")
	}
	if reached := s.routeMockRequests(before); len(reached) != 1 {
		t.Fatalf("upstream saw %+v after the refusals", reached)
	}
	s.routeLedgerBalanced(tn.userID)
}

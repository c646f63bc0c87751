package main

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

func TestClientCredentialsNeverReachUpstream(t *testing.T) {
	oa, an, ge := newUpstream(t), newUpstream(t), newUpstream(t)
	h := startGateway(t, []internalapi.Provider{
		provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o"),
		provider("prv_an", internalapi.TypeAnthropic, an, 0, 1, "claude-x"),
		provider("prv_ge", internalapi.TypeGemini, ge, 0, 1, "gemini-x"),
	})
	// Every credential a client could send, on every route, plus headers
	// that must not be forwarded either.
	creds := map[string]string{
		"Authorization":   "Bearer " + h.key,
		"x-api-key":       h.key,
		"x-goog-api-key":  h.key,
		"Cookie":          "session=secret-cookie",
		"X-Forwarded-For": "203.0.113.9",
		"Connection":      "keep-alive",
		"X-Mock-Status":   "500",
	}
	for _, c := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}`},
		{"/v1/messages", `{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`},
		{"/v1beta/models/gemini-x:generateContent?key=" + h.key, `{"contents":[{"parts":[{"text":"x"}]}]}`},
	} {
		resp, body := h.do(http.MethodPost, c.path, c.body, creds)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", c.path, resp.StatusCode, body)
		}
	}
	for _, u := range []*upstream{oa, an, ge} {
		reqs := u.mock.Requests(0)
		if len(reqs) != 1 {
			t.Fatalf("upstream saw %d requests", len(reqs))
		}
		r := reqs[0]
		if strings.Contains(r.URI, h.key) {
			t.Errorf("client key in upstream URI %s", r.URI)
		}
		for k, vs := range r.Headers {
			for _, v := range vs {
				if strings.Contains(v, h.key) || strings.Contains(v, "secret-cookie") || strings.Contains(v, "203.0.113.9") {
					t.Errorf("client secret forwarded upstream in %s: %s", k, v)
				}
			}
			if strings.EqualFold(k, "Cookie") || strings.EqualFold(k, "X-Forwarded-For") || strings.EqualFold(k, "X-Mock-Status") {
				t.Errorf("header %s forwarded upstream", k)
			}
		}
		// The provider's own key is what upstream gets.
		all := ""
		for _, vs := range r.Headers {
			all += strings.Join(vs, " ") + " "
		}
		if !strings.Contains(all, "sk-upstream-") {
			t.Errorf("upstream credential missing: %v", r.Headers)
		}
	}
}

func TestBodyOverCapIs413InCallersFormat(t *testing.T) {
	oa := newUpstream(t)
	h := startGateway(t, []internalapi.Provider{provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o")})
	big := bytes.Repeat([]byte("a"), 33<<20)
	for _, c := range []struct {
		path, reasonPath string
	}{
		{"/v1/chat/completions", "error.code"},
		{"/v1/messages", "error.reason"},
		{"/v1beta/models/gemini-x:generateContent", "error.details.0.reason"},
	} {
		body := `{"model":"gpt-4o","messages":[{"role":"user","content":"` + string(big) + `"}]}`
		resp, out := h.do(http.MethodPost, c.path, body, nil)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || gjson.GetBytes(out, c.reasonPath).Str != "BODY_TOO_LARGE" {
			t.Errorf("%s: %d %s", c.path, resp.StatusCode, out)
		}
	}
	if oa.mock.Stats().Total != 0 {
		t.Error("an oversized body reached upstream")
	}
}

func TestKeyAllowListsAndRefusals(t *testing.T) {
	oa := newUpstream(t)
	h := startGateway(t, []internalapi.Provider{provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o", "gpt-4o-mini")})
	limited := apikey.Generate()
	h.billing.mu.Lock()
	h.billing.keys[limited] = internalapi.VerifyKeyResponse{KeyID: "key_lim", UserID: h.userID, UserActive: true, Models: []string{"gpt-4o-m*"}}
	otherIP := apikey.Generate()
	h.billing.keys[otherIP] = internalapi.VerifyKeyResponse{KeyID: "key_ip", UserID: h.userID, UserActive: true, AllowedIPs: []string{"10.1.0.0/16"}}
	h.billing.mu.Unlock()

	cases := []struct {
		name, key, body string
		status          int
		reason          string
	}{
		{"allowed model", limited, `{"model":"gpt-4o-mini","messages":[]}`, 200, ""},
		{"other model", limited, `{"model":"gpt-4o","messages":[]}`, 403, "MODEL_NOT_ALLOWED"},
		{"ip not allowed", otherIP, `{"model":"gpt-4o","messages":[]}`, 403, "IP_NOT_ALLOWED"},
		{"no key", "", `{"model":"gpt-4o"}`, 401, "MISSING_CREDENTIALS"},
		{"unknown key", apikey.Generate(), `{"model":"gpt-4o"}`, 401, "INVALID_CREDENTIALS"},
		{"malformed key", "sk-other-123", `{"model":"gpt-4o"}`, 401, "INVALID_CREDENTIALS"},
		{"malformed json", h.key, `{"model":`, 400, "MALFORMED_JSON"},
		{"missing model", h.key, `{"messages":[]}`, 400, "MISSING_MODEL"},
		{"unknown model", h.key, `{"model":"nope"}`, 404, "MODEL_NOT_FOUND"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			auth := ""
			if c.key != "" {
				auth = "Bearer " + c.key
			}
			resp, body := h.do(http.MethodPost, "/v1/chat/completions", c.body, map[string]string{"Authorization": auth})
			if resp.StatusCode != c.status || gjson.GetBytes(body, "error.code").Str != c.reason {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, body, c.status, c.reason)
			}
			if c.key != "" && strings.Contains(string(body), c.key) {
				t.Fatal("key echoed in the error body")
			}
			if c.status != 200 {
				u, logs := h.eventsFor(resp.Header.Get("X-Request-Id"), false)
				if u != nil || logs[0].ErrorReason != c.reason {
					t.Errorf("refusal events: usage %v, log reason %q", u, logs[0].ErrorReason)
				}
			}
		})
	}
	// Unknown routes: 404 in the format the path implies; a Gemini path
	// with a bad action or model: 400 in Gemini's format.
	for _, c := range []struct {
		path, reasonPath, reason string
		status                   int
	}{
		{"/v1/unknown", "error.code", "ROUTE_NOT_FOUND", 404},
		{"/v1/messages/batches", "error.reason", "ROUTE_NOT_FOUND", 404},
		{"/v1beta/models/gemini-x:explode", "error.details.0.reason", "INVALID_MODEL_ACTION", 400},
		{"/v1beta/models/no-action-at-all/x", "error.details.0.reason", "INVALID_MODEL_NAME", 400},
	} {
		resp, body := h.do(http.MethodPost, c.path, `{}`, nil)
		if resp.StatusCode != c.status || gjson.GetBytes(body, c.reasonPath).Str != c.reason {
			t.Errorf("%s: %d %s", c.path, resp.StatusCode, body)
		}
	}
}

func TestInsufficientBalanceIs402(t *testing.T) {
	oa := newUpstream(t)
	h := startGateway(t, []internalapi.Provider{provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o")})
	h.billing.mu.Lock()
	h.billing.bal = 1 // one micro-USD: nothing fits
	h.billing.mu.Unlock()
	resp, body := h.do(http.MethodPost, "/v1/chat/completions", chatBody, nil)
	if resp.StatusCode != http.StatusPaymentRequired || gjson.GetBytes(body, "error.code").Str != "INSUFFICIENT_BALANCE" {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	if oa.mock.Stats().Total != 0 {
		t.Error("a refused request reached upstream")
	}
	if h.billing.loads != 1 {
		t.Errorf("account loaded %d times, want 1 (on the missing mirror)", h.billing.loads)
	}
}

// A client's X-Request-Id is echoed, never the billing key: reusing one
// id for several requests must not make the repeats free.
func TestClientRequestIDIsNotTheBillingKey(t *testing.T) {
	oa := newUpstream(t)
	h := startGateway(t, []internalapi.Provider{provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o")})
	const clientID = "01J0000000000000000000TEST"
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		resp, body := h.do(http.MethodPost, "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}`,
			map[string]string{"Authorization": "Bearer " + h.key, "X-Request-Id": clientID})
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		if got := resp.Header.Get("X-Client-Request-Id"); got != clientID {
			t.Fatalf("X-Client-Request-Id = %q, want the client's %q", got, clientID)
		}
		id := resp.Header.Get("X-Request-Id")
		if id == clientID || seen[id] {
			t.Fatalf("request %d got id %q: the gateway must give every request its own", i, id)
		}
		seen[id] = true
		u, _ := h.eventsFor(id, true)
		if u == nil || u.RequestID != id || u.PromptTokens == 0 {
			t.Fatalf("request %d: billing.usage %+v", i, u)
		}
	}
	// A malformed client id is neither echoed nor used.
	resp, _ := h.do(http.MethodPost, "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}`,
		map[string]string{"Authorization": "Bearer " + h.key, "X-Request-Id": "not an id"})
	if resp.Header.Get("X-Client-Request-Id") != "" || resp.Header.Get("X-Request-Id") == "not an id" {
		t.Fatalf("malformed client id used: %v", resp.Header)
	}
}

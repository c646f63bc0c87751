package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestTicketRoute(t *testing.T) {
	s := startStack(t, nil)
	key := s.user("usr_tom")

	status, body := s.ticket(key, "")
	if status != http.StatusCreated || body["user_id"] != "usr_tom" || body["ttl_ms"].(float64) != 60000 || !strings.HasPrefix(body["ticket"].(string), "tkt_") {
		t.Fatalf("ticket without Origin (server side): %d %v", status, body)
	}
	exp, err := time.Parse(time.RFC3339Nano, body["expires_at"].(string))
	if err != nil || time.Until(exp) > time.Minute {
		t.Fatalf("expires_at %v %v", body["expires_at"], err)
	}
	for _, tt := range []struct {
		name, key, origin string
		status            int
		reason            string
	}{
		{"allowed origin", key, testOrigin, 201, ""},
		{"foreign origin", key, "https://evil.example", 403, "ORIGIN_NOT_ALLOWED"},
		{"no key", "", testOrigin, 401, "MISSING_CREDENTIALS"},
		{"bad key", "sk-lurus-unknown000000000000000000000000000000", "", 401, "INVALID_CREDENTIALS"},
	} {
		status, body := s.ticket(tt.key, tt.origin)
		reason := ""
		if e, ok := body["error"].(map[string]any); ok {
			reason, _ = e["reason"].(string)
		}
		if status != tt.status || reason != tt.reason {
			t.Errorf("%s: %d %v", tt.name, status, body)
		}
	}

	// CORS preflight from a browser page on an allowed origin.
	req, _ := http.NewRequest(http.MethodOptions, s.base+"/api/v1/sync/ticket", nil)
	req.Header.Set("Origin", testOrigin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "x-api-key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != testOrigin ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "X-Api-Key") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	req.Header.Set("Origin", "https://evil.example")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if got := s.metric("lurus_sync_tickets_issued_total"); got != "2" {
		t.Fatalf("tickets issued %q", got)
	}
}

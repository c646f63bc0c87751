package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/sync-service/internal/conf"
)

// redeem opens a socket with a ticket from testOrigin and returns the
// refusal's status and reason ("" when the socket opened).
func (s *stack) redeem(ticket string) (int, string) {
	s.t.Helper()
	c, resp, err := s.tryDial("", url.Values{"ticket": {ticket}}, http.Header{"Origin": {testOrigin}})
	if err == nil {
		c.Close()
		return http.StatusSwitchingProtocols, ""
	}
	if resp == nil {
		s.t.Fatalf("dial: %v", err)
	}
	return resp.StatusCode, refusalReason(resp)
}

func refusalReason(resp *http.Response) string {
	raw, _ := io.ReadAll(resp.Body)
	var b apperr.Body
	_ = json.Unmarshal(raw, &b)
	return b.Error.Reason
}

// issue asks for a ticket and returns it.
func (s *stack) issue(key string) string {
	s.t.Helper()
	status, body := s.ticket(key, testOrigin)
	if status != http.StatusCreated {
		s.t.Fatalf("ticket: %d %v", status, body)
	}
	return body["ticket"].(string)
}

// TestTicketIssuedBeforeRevocationIsRefused: a ticket carries the key's
// hash, and redeeming it re-verifies the key; key.changed has evicted the
// cached answer, so a key revoked after the ticket was issued opens no
// session (401 KEY_REVOKED), and neither does a key whose user was
// disabled meanwhile (403 USER_DISABLED).
func TestTicketIssuedBeforeRevocationIsRefused(t *testing.T) {
	s := startStack(t, nil)
	key := s.user("usr_rev")
	ticket := s.issue(key)
	spare := s.issue(key)
	if status, reason := s.redeem(spare); reason != "" {
		t.Fatalf("a ticket of a valid key was refused: %d %s", status, reason)
	}

	s.billing.RevokeKey(key)
	s.keyChanged(events.KeyChanged{KeyID: "key_usr_rev", UserID: "usr_rev"})
	if status, reason := s.redeem(ticket); status != http.StatusUnauthorized || reason != string(apperr.ReasonKeyRevoked) {
		t.Fatalf("ticket issued before the revocation: %d %q, want 401 KEY_REVOKED", status, reason)
	}

	// A disabled user: billing still verifies the key, Authorize refuses.
	other := s.user("usr_dis")
	ticket = s.issue(other)
	s.billing.AddKey(other, internalapi.VerifyKeyResponse{KeyID: "key_usr_dis", UserID: "usr_dis", UserActive: false})
	s.keyChanged(events.KeyChanged{UserID: "usr_dis"})
	if status, reason := s.redeem(ticket); status != http.StatusForbidden || reason != string(apperr.ReasonUserDisabled) {
		t.Fatalf("ticket issued before the user was disabled: %d %q, want 403 USER_DISABLED", status, reason)
	}
}

// keyChanged publishes kc as billing does and waits until sync-service has
// acted on it (it logs after evicting).
func (s *stack) keyChanged(kc events.KeyChanged) {
	s.t.Helper()
	before := strings.Count(s.logs.String(), `"msg":"key.changed"`)
	if err := natsbus.PublishCore(s.nats.Conn, s.nats.Names.Subject(events.SubjectKeyChanged), kc); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(s.logs.String(), `"msg":"key.changed"`) == before {
		if time.Now().After(deadline) {
			s.t.Fatal("key.changed not handled")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTicketRedeemedFromOutsideAllowList: the key's IP allow-list applies
// to whoever redeems the ticket, with server.trusted_proxies.
func TestTicketRedeemedFromOutsideAllowList(t *testing.T) {
	s := startStack(t, func(c *conf.Config) { c.Server.TrustedProxies = []string{"127.0.0.0/8"} })
	key := apikey.Generate()
	s.billing.AddKey(key, internalapi.VerifyKeyResponse{KeyID: "key_usr_ip", UserID: "usr_ip", UserActive: true,
		AllowedIPs: []string{"198.51.100.0/24"}})
	req, _ := http.NewRequest(http.MethodPost, s.base+"/api/v1/sync/ticket", nil)
	req.Header.Set("x-api-key", key)
	req.Header.Set("Origin", testOrigin)
	req.Header.Set("X-Forwarded-For", "198.51.100.7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("ticket from an allowed client behind the proxy: %d %v", resp.StatusCode, body)
	}
	// The same ticket, redeemed from an address outside the allow-list.
	c, wsResp, err := s.tryDial("", url.Values{"ticket": {body["ticket"].(string)}},
		http.Header{"Origin": {testOrigin}, "X-Forwarded-For": {"203.0.113.9"}})
	if err == nil {
		c.Close()
		t.Fatal("ticket redeemed from outside the key's allow-list")
	}
	if wsResp == nil || wsResp.StatusCode != http.StatusForbidden || refusalReason(wsResp) != string(apperr.ReasonIPNotAllowed) {
		t.Fatalf("redeemed from outside: %v", err)
	}
	// And the key itself from outside: the same refusal.
	status, ticketBody := s.ticket(key, testOrigin) // from 127.0.0.1, a proxy, no forwarded client
	if status != http.StatusForbidden || ticketBody["error"].(map[string]any)["reason"] != string(apperr.ReasonIPNotAllowed) {
		t.Fatalf("ticket for the key from outside: %d %v", status, ticketBody)
	}
}

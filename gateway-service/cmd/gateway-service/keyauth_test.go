package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// TestKeyAuthorizationSharedRefusals: the gateway refuses keys with the
// reasons every service gives (lurus-common/keyauth), on the relay routes
// and on the model lists.
func TestKeyAuthorizationSharedRefusals(t *testing.T) {
	oa := newUpstream(t)
	h := startGateway(t, []internalapi.Provider{provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o")})
	past := time.Now().Add(-time.Minute)
	disabled, revoked, expired, elsewhere := apikey.Generate(), apikey.Generate(), apikey.Generate(), apikey.Generate()
	h.billing.mu.Lock()
	h.billing.keys[disabled] = internalapi.VerifyKeyResponse{KeyID: "key_dis", UserID: h.userID, UserActive: false}
	h.billing.keys[revoked] = internalapi.VerifyKeyResponse{KeyID: "key_rev", UserID: h.userID, UserActive: true}
	h.billing.revoked = map[string]bool{"key_rev": true}
	h.billing.keys[expired] = internalapi.VerifyKeyResponse{KeyID: "key_exp", UserID: h.userID, UserActive: true, ExpiresAt: &past}
	// A model allow-list too: the model list must still check the address.
	h.billing.keys[elsewhere] = internalapi.VerifyKeyResponse{KeyID: "key_ip", UserID: h.userID, UserActive: true,
		Models: []string{"gpt-4o"}, AllowedIPs: []string{"198.51.100.0/24"}}
	h.billing.mu.Unlock()

	for _, c := range []struct {
		name, key string
		status    int
		reason    string
	}{
		{"disabled user", disabled, 403, "USER_DISABLED"},
		{"revoked key", revoked, 401, "KEY_REVOKED"},
		{"expired key", expired, 403, "KEY_EXPIRED"},
		{"address not allowed", elsewhere, 403, "IP_NOT_ALLOWED"},
	} {
		t.Run(c.name, func(t *testing.T) {
			hdr := map[string]string{"Authorization": "Bearer " + c.key, "X-Forwarded-For": "198.51.100.7"}
			resp, body := h.do(http.MethodPost, "/v1/chat/completions", `{"model":"gpt-4o","messages":[]}`, hdr)
			if resp.StatusCode != c.status || gjson.GetBytes(body, "error.code").Str != c.reason {
				t.Errorf("chat: %d %s, want %d %s", resp.StatusCode, body, c.status, c.reason)
			}
			resp, body = h.do(http.MethodGet, "/v1/models", "", hdr)
			if resp.StatusCode != c.status || gjson.GetBytes(body, "error.code").Str != c.reason {
				t.Errorf("models: %d %s, want %d %s", resp.StatusCode, body, c.status, c.reason)
			}
		})
	}
	if oa.mock.Stats().Total != 0 {
		t.Error("a refused key reached upstream")
	}
}

// TestKeyAuthorizationBehindTrustedProxy: with server.trusted_proxies the
// client is the right-most X-Forwarded-For entry that is not a proxy.
func TestKeyAuthorizationBehindTrustedProxy(t *testing.T) {
	oa := newUpstream(t)
	h := startGateway(t, []internalapi.Provider{provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o")},
		func(c *conf.Config) { c.Server.TrustedProxies = []string{"127.0.0.0/8"} })
	office := apikey.Generate()
	h.billing.mu.Lock()
	h.billing.keys[office] = internalapi.VerifyKeyResponse{KeyID: "key_office", UserID: h.userID, UserActive: true,
		AllowedIPs: []string{"198.51.100.0/24"}}
	h.billing.mu.Unlock()
	for _, c := range []struct {
		xff    string
		status int
	}{
		{"198.51.100.7", 200},
		{"198.51.100.7, 203.0.113.5", 403}, // the left entry is the client's own claim
		{"", 403},                          // the proxy itself is not the client
	} {
		hdr := map[string]string{"Authorization": "Bearer " + office}
		if c.xff != "" {
			hdr["X-Forwarded-For"] = c.xff
		}
		resp, body := h.do(http.MethodGet, "/v1/models", "", hdr)
		if resp.StatusCode != c.status {
			t.Errorf("X-Forwarded-For %q: %d %s, want %d", c.xff, resp.StatusCode, body, c.status)
		}
	}
}

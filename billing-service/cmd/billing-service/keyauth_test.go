package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// key creates another API key for userID with the given settings.
func (h *harness) key(userID string, body map[string]any) (keyID, key string) {
	h.t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	body["name"] = "k2"
	var k struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	st, raw := h.do("POST", "/api/v1/billing/users/"+userID+"/keys", testAdmin, body)
	h.must(st, raw, 201, &k)
	return k.ID, k.Key
}

// userRoutes are the routes a user's own key opens.
func userRoutes(userID string) []string {
	return []string{"/api/v1/billing/me", "/api/v1/billing/sync/" + userID, "/api/v1/billing/sync/" + userID + "/stream"}
}

// expectRefused asserts every user route answers status and reason.
func (h *harness) expectRefused(userID, key string, status int, reason apperr.Reason, hdr ...string) {
	h.t.Helper()
	for _, path := range userRoutes(userID) {
		// Bounded: a stream wrongly opened would never end.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", h.base+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			h.t.Fatal(err)
		}
		var b apperr.Body
		dec := json.NewDecoder(resp.Body).Decode(&b)
		resp.Body.Close()
		cancel()
		if resp.StatusCode != status || b.Error.Reason != string(reason) {
			h.t.Errorf("%s: %d %+v (%v), want %d %s", path, resp.StatusCode, b, dec, status, reason)
		}
	}
}

// TestUserKeyAuthorization: /me, /sync and the SSE stream apply the same
// key authorization as the gateway (lurus-common/keyauth): revoked 401
// KEY_REVOKED, disabled user 403 USER_DISABLED, expired 403 KEY_EXPIRED, a
// caller outside the key's IP allow-list 403 IP_NOT_ALLOWED; with no
// trusted proxy, X-Forwarded-For changes nothing.
func TestUserKeyAuthorization(t *testing.T) {
	h := start(t, nil)
	userID, _, _ := h.newUser(0, nil)

	_, office := h.key(userID, map[string]any{"allowed_ips": []string{"198.51.100.0/24"}})
	h.expectRefused(userID, office, 403, apperr.ReasonIPNotAllowed)
	h.expectRefused(userID, office, 403, apperr.ReasonIPNotAllowed, "X-Forwarded-For", "198.51.100.7")

	_, local := h.key(userID, map[string]any{"allowed_ips": []string{"127.0.0.1"}})
	if st, raw := h.do("GET", "/api/v1/billing/me", local, nil); st != 200 {
		t.Fatalf("key allowed from this address: %d %s", st, raw)
	}

	_, soon := h.key(userID, map[string]any{"expires_at": time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)})
	if st, raw := h.do("GET", "/api/v1/billing/me", soon, nil); st != 200 {
		t.Fatalf("key before its expiry: %d %s", st, raw)
	}
	time.Sleep(1600 * time.Millisecond)
	h.expectRefused(userID, soon, 403, apperr.ReasonKeyExpired)

	revokedID, revoked := h.key(userID, nil)
	st, raw := h.do("DELETE", "/api/v1/billing/keys/"+revokedID, testAdmin, nil)
	h.must(st, raw, 200, nil)
	h.expectRefused(userID, revoked, 401, apperr.ReasonKeyRevoked)

	st, raw = h.do("PATCH", "/api/v1/billing/users/"+userID, testAdmin, map[string]any{"status": "disabled"})
	h.must(st, raw, 200, nil)
	h.expectRefused(userID, local, 403, apperr.ReasonUserDisabled)
}

// TestUserKeyAuthorizationBehindProxy: with http.trusted_proxies set, the
// client is the right-most X-Forwarded-For entry that is not a trusted
// proxy; an entry the client wrote itself further left is never read.
func TestUserKeyAuthorizationBehindProxy(t *testing.T) {
	h := start(t, func(c *conf.Config, a *App) { c.Server.TrustedProxies = []string{"127.0.0.0/8"} })
	userID, _, _ := h.newUser(0, nil)
	_, office := h.key(userID, map[string]any{"allowed_ips": []string{"198.51.100.0/24"}})
	for _, path := range userRoutes(userID)[:2] {
		if st, raw := h.do("GET", path, office, nil, "X-Forwarded-For", "198.51.100.7"); st != 200 {
			t.Errorf("%s from an allowed client behind the proxy: %d %s", path, st, raw)
		}
	}
	h.expectRefused(userID, office, 403, apperr.ReasonIPNotAllowed, "X-Forwarded-For", "198.51.100.7, 203.0.113.5")
	h.expectRefused(userID, office, 403, apperr.ReasonIPNotAllowed) // the proxy itself is not the client's network
}

// TestVerifyKeyByHash: the internal verify route answers by the key's
// peppered hash, the form every other service asks in.
func TestVerifyKeyByHash(t *testing.T) {
	h := start(t, nil)
	userID, keyID, key := h.newUser(0, nil)
	var v internalapi.VerifyKeyResponse
	st, raw := h.do("POST", "/internal/v1/keys/verify", testInternal, internalapi.VerifyKeyRequest{KeyHash: apikey.Hash(testPepper, key)})
	h.must(st, raw, 200, &v)
	if v.KeyID != keyID || v.UserID != userID || !v.UserActive {
		t.Fatalf("verify by hash: %+v", v)
	}
	for _, tc := range []struct {
		name   string
		req    internalapi.VerifyKeyRequest
		status int
		reason apperr.Reason
	}{
		{"hash under another pepper", internalapi.VerifyKeyRequest{KeyHash: apikey.Hash("other", key)}, 401, apperr.ReasonInvalidCredentials},
		{"both fields", internalapi.VerifyKeyRequest{Key: key, KeyHash: apikey.Hash(testPepper, key)}, 400, apperr.ReasonInvalidArgument},
		{"neither field", internalapi.VerifyKeyRequest{}, 401, apperr.ReasonInvalidCredentials},
	} {
		st, raw := h.do("POST", "/internal/v1/keys/verify", testInternal, tc.req)
		var b apperr.Body
		_ = json.Unmarshal(raw, &b)
		if st != tc.status || b.Error.Reason != string(tc.reason) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, st, raw, tc.status, tc.reason)
		}
	}
	// A disabled user still verifies (200, user_active false): the caller's
	// Authorize answers 403 USER_DISABLED and may cache the answer.
	st, raw = h.do("PATCH", "/api/v1/billing/users/"+userID, testAdmin, map[string]any{"status": "disabled"})
	h.must(st, raw, 200, nil)
	st, raw = h.do("POST", "/internal/v1/keys/verify", testInternal, internalapi.VerifyKeyRequest{KeyHash: apikey.Hash(testPepper, key)})
	h.must(st, raw, 200, &v)
	if v.UserActive {
		t.Fatalf("disabled user verified as active: %+v", v)
	}
}

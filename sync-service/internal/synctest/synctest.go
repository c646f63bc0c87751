// Package synctest holds test helpers shared by sync-service's integration
// tests, its end-to-end tests and the benchmark: a fake billing-service
// serving the two internal routes sync-service calls, and a small
// WebSocket client that records what it receives.
package synctest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// Pepper is the $LURUS_KEY_PEPPER of sync-services run against a
// FakeBilling: verification requests carry the key's hash under it.
const Pepper = "test-key-pepper"

// FakeBilling answers POST /internal/v1/keys/verify from a key → response
// table (asked by the key's hash under Pepper, as billing-service is) and
// GET /internal/v1/sync/<user> from a user → state table, checking the
// internal token like billing-service does.
type FakeBilling struct {
	Token string

	mu       sync.Mutex
	keys     map[string]internalapi.VerifyKeyResponse // by hash
	revoked  map[string]bool                          // hashes
	states   map[string]internalapi.SyncState
	Verifies atomic.Int64 // verify calls received
	Syncs    atomic.Int64 // sync state calls received
}

// NewFakeBilling returns an empty fake expecting token.
func NewFakeBilling(token string) *FakeBilling {
	return &FakeBilling{Token: token, keys: map[string]internalapi.VerifyKeyResponse{}, revoked: map[string]bool{},
		states: map[string]internalapi.SyncState{}}
}

// AddKey makes key valid for r.UserID.
func (f *FakeBilling) AddKey(key string, r internalapi.VerifyKeyResponse) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[apikey.Hash(Pepper, key)] = r
	delete(f.revoked, apikey.Hash(Pepper, key))
}

// RevokeKey makes key answer 401 KEY_REVOKED, as billing does.
func (f *FakeBilling) RevokeKey(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := apikey.Hash(Pepper, key)
	delete(f.keys, h)
	f.revoked[h] = true
}

// SetState sets what the sync route answers for s.UserID.
func (f *FakeBilling) SetState(s internalapi.SyncState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states[s.UserID] = s
}

// ServeHTTP implements http.Handler.
func (f *FakeBilling) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/health" {
		w.WriteHeader(http.StatusOK)
		return
	}
	if !internalapi.CheckBearer(r.Header.Get("Authorization"), f.Token) {
		writeErr(w, http.StatusUnauthorized, apperr.ReasonInvalidCredentials, "bad internal token")
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == internalapi.RouteVerifyKey:
		f.Verifies.Add(1)
		var req internalapi.VerifyKeyRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		resp, ok := f.keys[req.KeyHash]
		revoked := f.revoked[req.KeyHash]
		f.mu.Unlock()
		if revoked {
			writeErr(w, http.StatusUnauthorized, apperr.ReasonKeyRevoked, "API key revoked")
			return
		}
		if !ok {
			writeErr(w, http.StatusUnauthorized, apperr.ReasonInvalidCredentials, "invalid API key")
			return
		}
		writeJSON(w, resp)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, internalapi.RouteSyncState):
		f.Syncs.Add(1)
		user := strings.TrimPrefix(r.URL.Path, internalapi.RouteSyncState)
		f.mu.Lock()
		st, ok := f.states[user]
		f.mu.Unlock()
		if !ok {
			writeErr(w, http.StatusNotFound, apperr.ReasonUserNotFound, "user not found")
			return
		}
		st.AsOf = time.Now().UTC()
		writeJSON(w, st)
	default:
		writeErr(w, http.StatusNotFound, apperr.ReasonRouteNotFound, "no route")
	}
}

// Start serves the fake on a loopback port until the returned server is
// closed.
func (f *FakeBilling) Start() *httptest.Server { return httptest.NewServer(f) }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, reason apperr.Reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(apperr.Body{Error: apperr.BodyError{Reason: string(reason), Message: msg}})
}

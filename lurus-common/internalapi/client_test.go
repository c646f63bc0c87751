package internalapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

func TestCheckBearer(t *testing.T) {
	for _, tt := range []struct {
		h, tok string
		want   bool
	}{
		{"Bearer abc", "abc", true},
		{"Bearer abcd", "abc", false},
		{"bearer abc", "abc", false},
		{"abc", "abc", false},
		{"Bearer ", "", false},
	} {
		if got := CheckBearer(tt.h, tt.tok); got != tt.want {
			t.Errorf("CheckBearer(%q,%q) = %v", tt.h, tt.tok, got)
		}
	}
}

func TestClientVerifyKey(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !CheckBearer(r.Header.Get("Authorization"), "itok") {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(apperr.Body{Error: apperr.BodyError{Reason: "INVALID_CREDENTIALS", Message: "bad internal token"}})
			return
		}
		var req VerifyKeyRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		if req.KeyHash != "good" || req.Key != "" {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(apperr.Body{Error: apperr.BodyError{Reason: "KEY_REVOKED", Message: "key revoked"}})
			return
		}
		_ = json.NewEncoder(w).Encode(VerifyKeyResponse{KeyID: "k1", UserID: "u1", UserActive: true, Models: []string{"gpt-*"}})
	}))
	defer srv.Close()
	c := NewClient(srv.URL, "itok", time.Second)
	got, err := c.VerifyKeyHash(context.Background(), "good")
	if err != nil || got.KeyID != "k1" || got.Models[0] != "gpt-*" {
		t.Fatalf("VerifyKeyHash = %+v, %v", got, err)
	}
	_, err = c.VerifyKeyHash(context.Background(), "bad")
	if apperr.ReasonOf(err) != apperr.ReasonKeyRevoked || apperr.KindOf(err) != apperr.KindUnauthenticated {
		t.Fatalf("bad key err = %v", err)
	}
	srv.Close()
	_, err = c.VerifyKeyHash(context.Background(), "good")
	if !errors.Is(err, apperr.New(apperr.ReasonDependencyDown, "")) {
		t.Fatalf("down err = %v", err)
	}
}

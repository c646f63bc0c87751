package service

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// APIKeyFromRequest returns the API key a client sent the way the SDKs do:
// Authorization: Bearer (OpenAI style) or x-api-key (Anthropic style).
func APIKeyFromRequest(r *http.Request) string {
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(v)
	}
	return strings.TrimSpace(r.Header.Get("x-api-key"))
}

// WriteError answers err as {"error":{"reason","message"}} with its status.
func WriteError(w http.ResponseWriter, err error) {
	status, body := apperr.Render(err)
	if v := apperr.RetryAfterHeader(err); v != "" {
		w.Header().Set("Retry-After", v)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="lurus-sync"`)
	}
	WriteJSON(w, status, body)
}

// WriteJSON answers v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type requestIDKey struct{}

// WithRequestID returns ctx carrying a request id (set by the server's
// middleware).
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id in ctx ("" if none).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

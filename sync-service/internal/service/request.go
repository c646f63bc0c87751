package service

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
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

// AddrResolver finds a request's client address: the peer, or, when the
// peer is a trusted proxy, the right-most X-Forwarded-For entry that is not
// itself a trusted proxy.
type AddrResolver struct {
	Trusted []netip.Prefix
}

// ClientAddr returns the client address (the zero Addr if unparsable).
func (a AddrResolver) ClientAddr(r *http.Request) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !a.trusted(peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer
		}
		h = h.Unmap()
		if !a.trusted(h) {
			return h
		}
	}
	return peer
}

func (a AddrResolver) trusted(ip netip.Addr) bool {
	for _, p := range a.Trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return ip.Unmap()
}

// WriteError answers err as {"error":{"reason","message"}} with its status.
func WriteError(w http.ResponseWriter, err error) {
	status, body := apperr.Render(err)
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

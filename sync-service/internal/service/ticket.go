package service

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/authguard"
	"github.com/lurus-switch/lurus-switch/lurus-common/clientip"
	"github.com/lurus-switch/lurus-switch/lurus-common/edge"
	"github.com/lurus-switch/lurus-switch/lurus-common/keyauth"

	"github.com/lurus-switch/lurus-switch/sync-service/internal/biz"
)

// Keys is the one key authorization every service applies
// (keyauth.Cache): verify and authorize a key, and hash it for a ticket.
type Keys interface {
	Authenticate(ctx context.Context, key string, client netip.Addr) (keyauth.Info, error)
	Hash(key string) string
}

// TicketResponse is the body of a successful POST /api/v1/sync/ticket.
type TicketResponse struct {
	Ticket    string    `json:"ticket"`
	UserID    string    `json:"user_id"`
	ExpiresAt time.Time `json:"expires_at"`
	TTLMs     int64     `json:"ttl_ms"`
}

// TicketHandler serves POST /api/v1/sync/ticket: a client authenticated
// with its API key gets a single-use ticket for ?ticket= on /ws/sync. It
// answers CORS preflights for allowed origins, since browsers call it
// cross-origin.
type TicketHandler struct {
	Keys    Keys
	Tickets *biz.Tickets
	Origins *biz.OriginPolicy
	Addr    clientip.Resolver
	// Guard refuses client addresses with too many failed
	// authentications before their key is looked up (nil: no cap).
	Guard   *authguard.Guard
	Metrics *Metrics
	Log     *slog.Logger
}

// ServeHTTP implements http.Handler.
func (h *TicketHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin != "" {
		if !h.Origins.Allowed(origin) {
			h.Metrics.AuthFailures.WithLabelValues(string(apperr.ReasonOriginForbidden)).Inc()
			edge.WriteError(w, r, apperr.New(apperr.ReasonOriginForbidden, "origin not allowed"))
			return
		}
		hd := w.Header()
		hd.Set("Access-Control-Allow-Origin", origin)
		hd.Add("Vary", "Origin")
	}
	switch r.Method {
	case http.MethodOptions:
		if origin == "" {
			edge.WriteError(w, r, apperr.New(apperr.ReasonInvalidArgument, "preflight without Origin"))
			return
		}
		hd := w.Header()
		hd.Set("Access-Control-Allow-Methods", "POST")
		hd.Set("Access-Control-Allow-Headers", "Authorization, X-Api-Key, Content-Type, X-Request-Id")
		hd.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "POST, OPTIONS")
		edge.WriteJSON(w, http.StatusMethodNotAllowed, apperr.Body{Error: apperr.BodyError{Reason: string(apperr.ReasonUnsupportedAction), Message: "use POST"}})
		return
	}
	client := h.Addr.FromRequest(r)
	if err := h.Guard.Check(client); err != nil {
		edge.WriteError(w, r, err)
		return
	}
	key := edge.APIKey(r.Header.Get)
	info, err := h.Keys.Authenticate(r.Context(), key, client)
	h.Guard.Observe(client, err)
	if err != nil {
		countAuthFailure(h.Metrics, err)
		edge.WriteError(w, r, err)
		return
	}
	token, exp, err := h.Tickets.Issue(r.Context(), info, h.Keys.Hash(key))
	if err != nil {
		h.Log.ErrorContext(r.Context(), "issue ticket", "err", err)
		edge.WriteError(w, r, err)
		return
	}
	h.Metrics.TicketsIssued.Inc()
	edge.WriteJSON(w, http.StatusCreated, TicketResponse{Ticket: token, UserID: info.UserID, ExpiresAt: exp.UTC(), TTLMs: h.Tickets.TTL().Milliseconds()})
}

// countAuthFailure counts refusals (401/403), not dependency faults.
func countAuthFailure(m *Metrics, err error) {
	switch apperr.KindOf(err) {
	case apperr.KindUnauthenticated, apperr.KindForbidden:
		m.AuthFailures.WithLabelValues(string(apperr.ReasonOf(err))).Inc()
	}
}

package service

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"

	"github.com/lurus-switch/lurus-switch/sync-service/internal/biz"
)

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
	Auth    *biz.Authenticator
	Tickets *biz.Tickets
	Origins *biz.OriginPolicy
	Addr    AddrResolver
	Metrics *Metrics
	Log     *slog.Logger
}

// ServeHTTP implements http.Handler.
func (h *TicketHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin != "" {
		if !h.Origins.Allowed(origin) {
			h.Metrics.AuthFailures.WithLabelValues(string(apperr.ReasonOriginForbidden)).Inc()
			WriteError(w, apperr.New(apperr.ReasonOriginForbidden, "origin not allowed"))
			return
		}
		hd := w.Header()
		hd.Set("Access-Control-Allow-Origin", origin)
		hd.Add("Vary", "Origin")
	}
	switch r.Method {
	case http.MethodOptions:
		if origin == "" {
			WriteError(w, apperr.New(apperr.ReasonInvalidArgument, "preflight without Origin"))
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
		WriteJSON(w, http.StatusMethodNotAllowed, apperr.Body{Error: apperr.BodyError{Reason: string(apperr.ReasonUnsupportedAction), Message: "use POST"}})
		return
	}
	ident, err := h.Auth.Authenticate(r.Context(), APIKeyFromRequest(r), h.Addr.ClientAddr(r))
	if err != nil {
		countAuthFailure(h.Metrics, err)
		WriteError(w, err)
		return
	}
	token, exp, err := h.Tickets.Issue(r.Context(), ident)
	if err != nil {
		h.Log.ErrorContext(r.Context(), "issue ticket", "err", err)
		WriteError(w, err)
		return
	}
	h.Metrics.TicketsIssued.Inc()
	WriteJSON(w, http.StatusCreated, TicketResponse{Ticket: token, UserID: ident.UserID, ExpiresAt: exp.UTC(), TTLMs: h.Tickets.TTL().Milliseconds()})
}

// countAuthFailure counts refusals (401/403), not dependency faults.
func countAuthFailure(m *Metrics, err error) {
	switch apperr.KindOf(err) {
	case apperr.KindUnauthenticated, apperr.KindForbidden:
		m.AuthFailures.WithLabelValues(string(apperr.ReasonOf(err))).Inc()
	}
}

// Package server wires sync-service's HTTP transport: the routes, the
// middleware every request passes (request id, trace context, body cap,
// one log line, metrics), and /health, /ready, /metrics.
package server

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/edge"
	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"

	"github.com/lurus-switch/lurus-switch/sync-service/internal/conf"
)

// Check is one readiness check: a dependency name and how to ping it.
type Check = edge.Check

// Routes are the handlers the server mounts.
type Routes struct {
	WS     http.Handler // GET /ws/sync
	Ticket http.Handler // POST (and OPTIONS) /api/v1/sync/ticket
	Ready  []Check
}

// New returns the HTTP server for cfg (not yet listening).
func New(cfg conf.Server, routes Routes, reg *prometheus.Registry, log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/ws/sync", methods(routes.WS, http.MethodGet))
	mux.Handle("/api/v1/sync/ticket", methods(routes.Ticket, http.MethodPost, http.MethodOptions))
	ops := methods(edge.Ops(routes.Ready, log, telemetry.MetricsHandler(reg)), http.MethodGet)
	mux.Handle("/health", ops)
	mux.Handle("/ready", ops)
	mux.Handle("/metrics", ops)
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		edge.WriteError(w, r, apperr.Newf(apperr.ReasonRouteNotFound, "no route %s %s", r.Method, r.URL.Path))
	}))
	return &http.Server{
		Addr:              cfg.Addr,
		Handler:           accessLog(cfg.MaxBodyBytes, reg, log).Wrap(mux),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Listen opens the server's listener (so a test or the bench can learn a
// random port before serving).
func Listen(hs *http.Server) (net.Listener, error) {
	return net.Listen("tcp", hs.Addr)
}

func methods(h http.Handler, allowed ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, m := range allowed {
			if r.Method == m {
				h.ServeHTTP(w, r)
				return
			}
		}
		for _, m := range allowed {
			w.Header().Add("Allow", m)
		}
		edge.WriteJSON(w, http.StatusMethodNotAllowed, apperr.Body{Error: apperr.BodyError{
			Reason: string(apperr.ReasonUnsupportedAction), Message: "method " + r.Method + " not allowed",
		}})
	})
}

// ErrNotReady is returned by a readiness check whose component has not
// started.
var ErrNotReady = errors.New("not started")

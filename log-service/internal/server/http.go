// Package server builds log-service's Kratos HTTP server: the API routes
// from internal/service, /health, /ready and /metrics, and the shared edge
// of lurus-common/edge: one access-log line and metrics per request,
// request ids, body caps, and every error rendered as
// {"error":{"reason","message"}} through apperr.
package server

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	khttp "github.com/go-kratos/kratos/v2/transport/http"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lurus-switch/lurus-switch/log-service/internal/metrics"
	"github.com/lurus-switch/lurus-switch/log-service/internal/service"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/edge"
	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
)

// Check is one readiness check: nil when the dependency answers.
type Check = edge.Check

// Options configure the HTTP server.
type Options struct {
	Addr         string
	Timeout      time.Duration
	MaxBodyBytes int64
	Routes       []service.Route
	Ready        []Check
	Registry     *prometheus.Registry
	Metrics      *metrics.Metrics
	Log          *slog.Logger
}

// NewHTTP returns the server, not yet started.
func NewHTTP(o Options) *khttp.Server {
	access := edge.Access{Log: o.Log, Message: "http request", MaxBodyBytes: o.MaxBodyBytes,
		Observe: func(r *http.Request, e edge.Entry) {
			o.Metrics.HTTPRequests.WithLabelValues(e.Route, r.Method, strconv.Itoa(e.Status)).Inc()
			o.Metrics.HTTPDuration.WithLabelValues(e.Route).Observe(e.Duration.Seconds())
		}}
	srv := khttp.NewServer(
		khttp.Address(o.Addr),
		khttp.Timeout(o.Timeout),
		khttp.Filter(access.Wrap),
		khttp.ErrorEncoder(edge.WriteError),
		khttp.NotFoundHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			edge.WriteError(w, r, apperr.New(apperr.ReasonRouteNotFound, "no route "+r.URL.Path))
		})),
		khttp.MethodNotAllowedHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			edge.WriteError(w, r, apperr.New(apperr.ReasonRouteNotFound, "method "+r.Method+" not allowed on "+r.URL.Path))
		})),
	)
	r := srv.Route("/")
	oh := serve(edge.Ops(o.Ready, o.Log, telemetry.MetricsHandler(o.Registry)))
	routes := append([]service.Route{
		{Method: http.MethodGet, Path: "/health", Handler: oh},
		{Method: http.MethodGet, Path: "/ready", Handler: oh},
		{Method: http.MethodGet, Path: "/metrics", Handler: oh},
	}, o.Routes...)
	for _, rt := range routes {
		r.Handle(rt.Method, rt.Path, rt.Handler, routeLabel(rt.Path))
	}
	return srv
}

// serve is a Kratos route handler answering with h.
func serve(h http.Handler) khttp.HandlerFunc {
	return func(ctx khttp.Context) error {
		h.ServeHTTP(ctx.Response(), ctx.Request())
		return nil
	}
}

// routeLabel records the route template for logs and metrics.
func routeLabel(path string) khttp.FilterFunc {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			edge.SetRoute(r.Context(), path)
			next.ServeHTTP(w, r)
		})
	}
}

// Package server wires provider-service's HTTP transport: a Kratos HTTP
// server with the admin and internal routes, bearer-token auth per route
// group, one error encoder rendering apperr bodies, request logging,
// metrics, tracing, body caps (the shared lurus-common/edge middleware),
// and /health, /ready and /metrics.
package server

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	khttp "github.com/go-kratos/kratos/v2/transport/http"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/edge"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/service"
)

// Check is one readiness check: a dependency name and a probe.
type Check = edge.Check

// Options configure the HTTP server.
type Options struct {
	Addr          string
	Timeout       time.Duration
	MaxBodyBytes  int64
	AdminToken    string
	InternalToken string
	Log           *slog.Logger
	Registry      *prometheus.Registry
	Metrics       *Metrics
	Ready         []Check
	Providers     *service.Providers
	// Options are extra Kratos server options, applied last.
	Options []khttp.ServerOption
}

// NewHTTP builds the server with every route registered.
func NewHTTP(o Options) *khttp.Server {
	access := edge.Access{Log: o.Log, MaxBodyBytes: o.MaxBodyBytes, Observe: func(r *http.Request, e edge.Entry) {
		o.Metrics.Requests.WithLabelValues(e.Route, r.Method, strconv.Itoa(e.Status)).Inc()
		o.Metrics.Duration.WithLabelValues(e.Route, r.Method).Observe(e.Duration.Seconds())
	}}
	opts := append([]khttp.ServerOption{
		khttp.Address(o.Addr),
		khttp.Timeout(o.Timeout),
		khttp.ErrorEncoder(edge.WriteError),
		khttp.Filter(access.Wrap),
		khttp.NotFoundHandler(notFound("no such route")),
		khttp.MethodNotAllowedHandler(notFound("method not allowed on this route")),
	}, o.Options...)
	srv := khttp.NewServer(opts...)

	admin := srv.Route("/api/v1/providers", routeLabel, bearer(o.AdminToken))
	p := o.Providers
	admin.POST("/", p.Create)
	admin.GET("/", p.List)
	admin.GET("/{id}", p.Get)
	admin.PUT("/{id}", p.Replace)
	admin.PATCH("/{id}", p.Patch)
	admin.DELETE("/{id}", p.Delete)
	admin.POST("/{id}/keys", p.AddKey)
	admin.DELETE("/{id}/keys/{key_id}", p.DeleteKey)
	admin.POST("/{id}/test", p.Test)
	admin.GET("/{id}/health", p.Health)

	internal := srv.Route("/", routeLabel, bearer(o.InternalToken))
	internal.GET(internalapi.RouteProviderSnapshot, p.Snapshot)

	ops := srv.Route("/", edge.Quiet)
	oh := serve(edge.Ops(o.Ready, o.Log, telemetry.MetricsHandler(o.Registry)))
	ops.GET("/health", oh)
	ops.GET("/ready", oh)
	ops.GET("/metrics", oh)
	return srv
}

// serve is a Kratos route handler answering with h.
func serve(h http.Handler) khttp.HandlerFunc {
	return func(ctx khttp.Context) error {
		h.ServeHTTP(ctx.Response(), ctx.Request())
		return nil
	}
}

func notFound(msg string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		edge.WriteError(w, r, apperr.New(apperr.ReasonRouteNotFound, msg))
	})
}

// bearer admits only requests carrying "Authorization: Bearer <token>".
func bearer(token string) khttp.FilterFunc {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := edge.CheckToken(r.Header.Get("Authorization"), token); err != nil {
				edge.WriteError(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

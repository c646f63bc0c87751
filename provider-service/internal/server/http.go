// Package server wires provider-service's HTTP transport: a Kratos HTTP
// server with the admin and internal routes, bearer-token auth per route
// group, one error encoder rendering apperr bodies, request logging,
// metrics, tracing, body caps, and /health, /ready and /metrics.
package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	khttp "github.com/go-kratos/kratos/v2/transport/http"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/service"
)

// Check is one readiness check: a dependency name and a probe.
type Check struct {
	Name string
	Ping func(context.Context) error
}

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
	enc := errorEncoder(o.Log)
	opts := append([]khttp.ServerOption{
		khttp.Address(o.Addr),
		khttp.Timeout(o.Timeout),
		khttp.ErrorEncoder(enc),
		khttp.Filter(observe(o.Log, o.Metrics, o.MaxBodyBytes, enc)),
		khttp.NotFoundHandler(notFound(enc, "no such route")),
		khttp.MethodNotAllowedHandler(notFound(enc, "method not allowed on this route")),
	}, o.Options...)
	srv := khttp.NewServer(opts...)

	admin := srv.Route("/api/v1/providers", routeLabel, bearer(o.AdminToken, enc))
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

	internal := srv.Route("/", routeLabel, bearer(o.InternalToken, enc))
	internal.GET(internalapi.RouteProviderSnapshot, p.Snapshot)

	ops := srv.Route("/", routeLabel, quiet)
	ops.GET("/health", func(ctx khttp.Context) error {
		return ctx.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	ops.GET("/ready", ready(o.Ready))
	metrics := telemetry.MetricsHandler(o.Registry)
	ops.GET("/metrics", func(ctx khttp.Context) error {
		metrics.ServeHTTP(ctx.Response(), ctx.Request())
		return nil
	})
	return srv
}

// errorEncoder renders every error through apperr: stable reason, a
// message, never an internal cause (which is logged instead).
func errorEncoder(log *slog.Logger) khttp.EncodeErrorFunc {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		status, body := apperr.Render(err)
		if status >= 500 && log != nil {
			log.ErrorContext(r.Context(), "request failed", "request_id", RequestID(r.Context()), "err", err)
		}
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lurus"`)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}
}

func notFound(enc khttp.EncodeErrorFunc, msg string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		enc(w, r, apperr.New(apperr.ReasonRouteNotFound, msg))
	})
}

// bearer admits only requests carrying "Authorization: Bearer <token>".
func bearer(token string, enc khttp.EncodeErrorFunc) khttp.FilterFunc {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := r.Header.Get("Authorization")
			switch {
			case h == "":
				enc(w, r, apperr.New(apperr.ReasonMissingCredentials, "send Authorization: Bearer <token>"))
			case !internalapi.CheckBearer(h, token):
				enc(w, r, apperr.New(apperr.ReasonInvalidCredentials, "the bearer token is not valid for this route"))
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}

func ready(checks []Check) khttp.HandlerFunc {
	return func(ctx khttp.Context) error {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		results := make(map[string]string, len(checks))
		status, code := "ok", http.StatusOK
		for _, c := range checks {
			if err := c.Ping(cctx); err != nil {
				results[c.Name] = "unavailable: " + telemetry.RedactString(err.Error())
				status, code = "unavailable", http.StatusServiceUnavailable
				continue
			}
			results[c.Name] = "ok"
		}
		return ctx.JSON(code, map[string]any{"status": status, "checks": results})
	}
}

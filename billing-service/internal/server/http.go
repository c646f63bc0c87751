// Package server wires billing-service's HTTP transport: a Gin engine with
// the routes of internal/service and /health, /ready and /metrics, behind
// the shared request middleware of lurus-common/edge (request id, trace
// context, body cap, panic recovery, one log line and the HTTP metrics).
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/metrics"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/service"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/edge"
	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
)

// Check is one readiness dependency.
type Check = edge.Check

// Options configure the engine.
type Options struct {
	MaxBodyBytes int64
	Checks       []Check
	Registry     *prometheus.Registry
	Metrics      *metrics.Metrics
	Log          *slog.Logger
}

func init() { gin.SetMode(gin.ReleaseMode) }

// NewEngine builds the Gin engine with every route, behind the shared
// request middleware.
func NewEngine(s *service.Service, o Options) http.Handler {
	r := gin.New()
	r.ContextWithFallback = true
	r.Use(routeLabel)
	r.NoRoute(func(c *gin.Context) {
		edge.WriteError(c.Writer, c.Request, apperr.New(apperr.ReasonRouteNotFound, "no such route"))
	})

	ops := gin.WrapH(edge.Ops(o.Checks, o.Log, telemetry.MetricsHandler(o.Registry)))
	r.GET("/health", ops)
	r.GET("/ready", ops)
	r.GET("/metrics", ops)

	admin := r.Group("/api/v1/billing", s.AdminAuth())
	admin.POST("/users", s.CreateUser)
	admin.GET("/users", s.ListUsers)
	admin.GET("/users/:id", s.GetUser)
	admin.PATCH("/users/:id", s.PatchUser)
	admin.POST("/users/:id/topup", s.Topup)
	admin.POST("/users/:id/adjust", s.Adjust)
	admin.GET("/users/:id/ledger", s.Ledger)
	admin.POST("/users/:id/keys", s.CreateKey)
	admin.GET("/users/:id/keys", s.ListKeys)
	admin.GET("/keys/:key_id", s.GetKey)
	admin.PATCH("/keys/:key_id", s.PatchKey)
	admin.DELETE("/keys/:key_id", s.RevokeKey)
	admin.POST("/prices", s.CreatePrice)
	admin.GET("/prices", s.ListPrices)
	admin.PUT("/prices/:id", s.UpdatePrice)
	admin.DELETE("/prices/:id", s.DeletePrice)
	admin.PUT("/groups/:group", s.SetMultiplier)
	admin.DELETE("/groups/:group", s.DeleteMultiplier)
	admin.GET("/usage", s.Usage)
	admin.GET("/stats/usage", s.Stats)

	user := r.Group("/api/v1/billing", s.UserAuth())
	user.GET("/me", s.Me)
	user.GET("/sync/:user_id", s.SyncState)
	user.GET("/sync/:user_id/stream", s.Stream)

	internal := r.Group("/internal/v1", s.InternalAuth())
	internal.POST("/keys/verify", s.VerifyKey)
	internal.GET("/prices", s.InternalPrices)
	internal.POST("/admission/load", s.LoadAccount)
	internal.GET("/sync/:user_id", s.InternalSyncState)

	return edge.Access{Log: o.Log, MaxBodyBytes: o.MaxBodyBytes, Observe: func(r *http.Request, e edge.Entry) {
		o.Metrics.HTTPRequests.WithLabelValues(r.Method, e.Route, strconv.Itoa(e.Status)).Inc()
		o.Metrics.HTTPDuration.WithLabelValues(e.Route).Observe(e.Duration.Seconds())
	}}.Wrap(r)
}

// routeLabel records the matched Gin route for the log line and metrics.
func routeLabel(c *gin.Context) {
	if route := c.FullPath(); route != "" {
		edge.SetRoute(c.Request.Context(), route)
	}
	c.Next()
}

// Server is the HTTP listener.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen binds addr ("127.0.0.1:0" picks a free port).
func Listen(addr string, h http.Handler, readHeaderTimeout time.Duration) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Server{ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout}}, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until Shutdown.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting and waits for in-flight requests (until ctx).
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

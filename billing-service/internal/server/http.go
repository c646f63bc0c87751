// Package server wires billing-service's HTTP transport: a Gin engine with
// its own recovery, request id, logging, metrics and body-limit
// middleware, the routes of internal/service, and /health, /ready and
// /metrics.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/metrics"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/service"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
)

// Check is one readiness dependency.
type Check struct {
	Name string
	Ping func(ctx context.Context) error
}

// Options configure the engine.
type Options struct {
	MaxBodyBytes int64
	Checks       []Check
	Registry     *prometheus.Registry
	Metrics      *metrics.Metrics
	Log          *slog.Logger
}

func init() { gin.SetMode(gin.ReleaseMode) }

// NewEngine builds the Gin engine with every route.
func NewEngine(s *service.Service, o Options) *gin.Engine {
	r := gin.New()
	r.ContextWithFallback = true
	r.Use(requestID(), observe(o.Log, o.Metrics), recovery(o.Log))
	r.NoRoute(func(c *gin.Context) {
		status, body := apperr.Render(apperr.New(apperr.ReasonRouteNotFound, "no such route"))
		c.JSON(status, body)
	})

	r.GET("/health", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/ready", ready(o.Checks))
	r.GET("/metrics", gin.WrapH(telemetry.MetricsHandler(o.Registry)))

	limited := r.Group("", bodyLimit(o.MaxBodyBytes))
	admin := limited.Group("/api/v1/billing", s.AdminAuth())
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

	user := limited.Group("/api/v1/billing", s.UserAuth())
	user.GET("/me", s.Me)
	user.GET("/sync/:user_id", s.SyncState)
	user.GET("/sync/:user_id/stream", s.Stream)

	internal := limited.Group("/internal/v1", s.InternalAuth())
	internal.POST("/keys/verify", s.VerifyKey)
	internal.GET("/prices", s.InternalPrices)
	internal.POST("/admission/load", s.LoadAccount)
	internal.GET("/sync/:user_id", s.InternalSyncState)
	return r
}

// ready answers 200 when every dependency answers, else 503 naming the
// ones that failed.
func ready(checks []Check) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
		defer cancel()
		failed := map[string]string{}
		for _, ch := range checks {
			if err := ch.Ping(ctx); err != nil {
				failed[ch.Name] = "unavailable"
			}
		}
		if len(failed) > 0 {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "failed": failed})
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "ready"})
	}
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

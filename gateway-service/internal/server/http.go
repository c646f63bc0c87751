// Package server wires the gateway's HTTP transport: a Hertz server with
// the relay routes of DESIGN.md §3, unknown routes answered 404 in the
// format the path implies, and /health, /ready and /metrics.
package server

import (
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/hertz/pkg/common/adaptor"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/gateway-service/internal/service"
	"github.com/lurus-switch/lurus-switch/lurus-common/edge"
)

// Config tunes the listener.
type Config struct {
	Listener        net.Listener
	MaxBodyBytes    int
	ReadTimeout     time.Duration
	IdleTimeout     time.Duration
	ShutdownTimeout time.Duration
	// Log receives why a readiness check failed (the caller sees only
	// which one did).
	Log *slog.Logger
}

// ReadyCheck names a dependency and checks it.
type ReadyCheck = edge.Check

// New builds the Hertz server on cfg.Listener with every route.
func New(cfg Config, relay *service.Relay, ready []ReadyCheck, metrics http.Handler) *server.Hertz {
	h := server.New(
		server.WithListener(cfg.Listener),
		server.WithStreamBody(true),
		server.WithMaxRequestBodySize(cfg.MaxBodyBytes),
		server.WithReadTimeout(cfg.ReadTimeout),
		server.WithIdleTimeout(cfg.IdleTimeout),
		server.WithExitWaitTime(cfg.ShutdownTimeout),
		server.WithDisablePrintRoute(true),
		server.WithRedirectTrailingSlash(false),
		server.WithRedirectFixedPath(false),
		// Route on the path as sent: nothing is decoded or normalized
		// before routing, so %2F or %2E%2E cannot move a request onto
		// another route, and a Gemini model is decoded once, by its parser.
		server.WithUseRawPath(true),
		server.WithUnescapePathValues(false),
		server.WithDisableDefaultDate(false),
	)
	h.POST("/v1/chat/completions", relay.Endpoint(biz.EndpointChatCompletions))
	h.POST("/v1/completions", relay.Endpoint(biz.EndpointCompletions))
	h.POST("/v1/embeddings", relay.Endpoint(biz.EndpointEmbeddings))
	h.POST("/v1/responses", relay.Endpoint(biz.EndpointResponses))
	h.GET("/v1/models", relay.Models(biz.FormatOpenAI))
	h.POST("/v1/messages", relay.Endpoint(biz.EndpointMessages))
	h.POST("/v1/messages/count_tokens", relay.Endpoint(biz.EndpointCountTokens))
	h.POST("/v1beta/models/*modelAction", relay.Gemini)
	h.GET("/v1beta/models", relay.Models(biz.FormatGemini))
	h.NoRoute(relay.NotFound)
	h.NoMethod(relay.NotFound)

	// The operational routes are the shared edge (lurus-common/edge): its
	// /health and /ready, behind its request middleware (one log line, at
	// debug when they succeed), reached through Hertz's net/http adaptor.
	// The relay routes log one line each of their own (service.LogSink).
	oh := adaptor.HertzHandler(edge.Access{Log: cfg.Log}.Wrap(edge.Quiet(edge.Ops(ready, cfg.Log, metrics))))
	h.GET("/health", oh)
	h.GET("/ready", oh)
	h.GET("/metrics", oh)
	return h
}

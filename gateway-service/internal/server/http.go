// Package server wires the gateway's HTTP transport: a Hertz server with
// the relay routes of DESIGN.md §3, unknown routes answered 404 in the
// format the path implies, and /health, /ready and /metrics.
package server

import (
	"context"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/hertz/pkg/common/adaptor"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/gateway-service/internal/service"
)

// Config tunes the listener.
type Config struct {
	Listener        net.Listener
	MaxBodyBytes    int
	ReadTimeout     time.Duration
	IdleTimeout     time.Duration
	ShutdownTimeout time.Duration
}

// ReadyCheck names a dependency and checks it.
type ReadyCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

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

	h.GET("/health", func(_ context.Context, ctx *app.RequestContext) {
		ctx.Data(http.StatusOK, "application/json", []byte(`{"status":"ok"}`))
	})
	h.GET("/ready", func(c context.Context, ctx *app.RequestContext) {
		c, cancel := context.WithTimeout(c, 2*time.Second)
		defer cancel()
		var failed []string
		for _, rc := range ready {
			if err := rc.Check(c); err != nil {
				failed = append(failed, `"`+rc.Name+`"`)
			}
		}
		if len(failed) > 0 {
			ctx.Data(http.StatusServiceUnavailable, "application/json",
				[]byte(`{"status":"unavailable","failed":[`+strings.Join(failed, ",")+`]}`))
			return
		}
		ctx.Data(http.StatusOK, "application/json", []byte(`{"status":"ready"}`))
	})
	mh := adaptor.HertzHandler(metrics)
	h.GET("/metrics", mh)
	return h
}

package server

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/metrics"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/service"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/requestid"
)

// requestID takes X-Request-Id from the client when it is a valid UUID or
// ULID, else makes one, and echoes it. It also picks up the caller's W3C
// trace context (traceparent), so the request log line carries its trace id.
func requestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Request = c.Request.WithContext(otel.GetTextMapPropagator().Extract(c.Request.Context(), propagation.HeaderCarrier(c.Request.Header)))
		id := requestid.From(c.GetHeader(requestid.Header))
		c.Set(service.CtxRequestID, id)
		c.Header(requestid.Header, id)
		c.Next()
	}
}

// recovery turns a panic into a 500 INTERNAL (the panic is logged, never
// shown).
func recovery(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("panic in handler", "panic", p, "path", c.Request.URL.Path, "request_id", c.GetString(service.CtxRequestID))
				if !c.Writer.Written() {
					status, body := apperr.Render(apperr.New(apperr.ReasonInternal, "internal error"))
					c.AbortWithStatusJSON(status, body)
				} else {
					c.Abort()
				}
			}
		}()
		c.Next()
	}
}

// observe logs one line per request and counts it.
func observe(log *slog.Logger, m *metrics.Metrics) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		status := c.Writer.Status()
		d := time.Since(start)
		m.HTTPRequests.WithLabelValues(c.Request.Method, route, strconv.Itoa(status)).Inc()
		m.HTTPDuration.WithLabelValues(route).Observe(d.Seconds())
		attrs := []any{"request_id", c.GetString(service.CtxRequestID), "method", c.Request.Method, "route", route,
			"path", c.Request.URL.Path, "status", status, "duration_ms", d.Milliseconds(), "bytes", c.Writer.Size()}
		if sc := trace.SpanContextFromContext(c.Request.Context()); sc.HasTraceID() {
			attrs = append(attrs, "trace_id", sc.TraceID().String())
		}
		if len(c.Errors) > 0 {
			attrs = append(attrs, "err", c.Errors.String())
		}
		log.Info("request", attrs...)
	}
}

// bodyLimit caps request bodies at max bytes: a declared larger body is
// refused at once with 413 BODY_TOO_LARGE; a longer one is cut off while
// read (the JSON binder then answers 413).
func bodyLimit(max int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > max {
			status, body := apperr.Render(apperr.New(apperr.ReasonBodyTooLarge, "request body too large"))
			c.AbortWithStatusJSON(status, body)
			return
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, max)
		c.Next()
	}
}

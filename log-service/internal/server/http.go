// Package server builds log-service's Kratos HTTP server: the API routes
// from internal/service, /health, /ready and /metrics, one access-log line
// and metrics per request, request ids, body caps, and every error
// rendered as {"error":{"reason","message"}} through apperr.
package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	khttp "github.com/go-kratos/kratos/v2/transport/http"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/lurus-switch/lurus-switch/log-service/internal/metrics"
	"github.com/lurus-switch/lurus-switch/log-service/internal/service"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/httpobs"
	"github.com/lurus-switch/lurus-switch/lurus-common/requestid"
	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
)

// Check is one readiness check: nil when the dependency answers.
type Check struct {
	Name string
	Fn   func(context.Context) error
}

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
	h := &handlers{o: o}
	srv := khttp.NewServer(
		khttp.Address(o.Addr),
		khttp.Timeout(o.Timeout),
		khttp.Filter(h.observe),
		khttp.ErrorEncoder(h.encodeError),
		khttp.NotFoundHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.encodeError(w, r, apperr.New(apperr.ReasonRouteNotFound, "no route "+r.URL.Path))
		})),
		khttp.MethodNotAllowedHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.encodeError(w, r, apperr.New(apperr.ReasonRouteNotFound, "method "+r.Method+" not allowed on "+r.URL.Path))
		})),
	)
	r := srv.Route("/")
	metricsHandler := telemetry.MetricsHandler(o.Registry)
	routes := append([]service.Route{
		{Method: http.MethodGet, Path: "/health", Handler: h.health},
		{Method: http.MethodGet, Path: "/ready", Handler: h.ready},
		{Method: http.MethodGet, Path: "/metrics", Handler: func(ctx khttp.Context) error {
			metricsHandler.ServeHTTP(ctx.Response(), ctx.Request())
			return nil
		}},
	}, o.Routes...)
	for _, rt := range routes {
		r.Handle(rt.Method, rt.Path, rt.Handler, routeLabel(rt.Path))
	}
	return srv
}

type handlers struct{ o Options }

func (h *handlers) health(ctx khttp.Context) error {
	return ctx.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// ready answers 200 when every dependency answers, else 503 naming the
// ones that did not (their errors go to the log, not the client).
func (h *handlers) ready(ctx khttp.Context) error {
	var failed []string
	for _, c := range h.o.Ready {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := c.Fn(cctx)
		cancel()
		if err != nil {
			h.o.Log.Warn("not ready", "dependency", c.Name, "err", err)
			failed = append(failed, c.Name)
		}
	}
	if len(failed) > 0 {
		return apperr.New(apperr.ReasonDependencyDown, "not ready: "+strings.Join(failed, ", ")+" unavailable")
	}
	return ctx.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// encodeError renders err with apperr; an internal cause stays in the log.
func (h *handlers) encodeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := apperr.Render(err)
	if info := infoFrom(r.Context()); info != nil {
		info.err = err
	}
	w.Header().Set("Content-Type", "application/json")
	if v := apperr.RetryAfterHeader(err); v != "" {
		w.Header().Set("Retry-After", v)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// requestInfo travels in the request context from observe to the route
// filter and the error encoder.
type requestInfo struct {
	route string
	err   error
}

type infoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	i, _ := ctx.Value(infoKey{}).(*requestInfo)
	return i
}

// routeLabel records the route template for logs and metrics.
func routeLabel(path string) khttp.FilterFunc {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if info := infoFrom(r.Context()); info != nil {
				info.route = path
			}
			next.ServeHTTP(w, r)
		})
	}
}

// tracer makes the server spans (exported only when OTEL_* configures it).
var tracer = otel.Tracer("github.com/lurus-switch/lurus-switch/log-service/internal/server")

// observe wraps every request: request id, trace context, body cap, one
// access-log line and the HTTP metrics.
func (h *handlers) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestid.From(r.Header.Get(requestid.Header))
		w.Header().Set("X-Request-Id", id)
		info := &requestInfo{route: "unmatched"}
		ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, "HTTP "+r.Method, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		ctx = context.WithValue(ctx, infoKey{}, info)
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, h.o.MaxBodyBytes)
		}
		sw := httpobs.NewRecorder(w)
		next.ServeHTTP(sw, r.WithContext(ctx))
		status := sw.Status()
		if status == 0 {
			status = http.StatusOK
		}
		took := time.Since(start)
		span.SetName(r.Method + " " + info.route)
		span.SetAttributes(attribute.String("http.route", info.route), attribute.Int("http.status_code", status),
			attribute.String("lurus.request_id", id))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		h.o.Metrics.HTTPRequests.WithLabelValues(info.route, r.Method, strconv.Itoa(status)).Inc()
		h.o.Metrics.HTTPDuration.WithLabelValues(info.route).Observe(took.Seconds())
		attrs := []any{"request_id", id, "method", r.Method, "route", info.route, "path", r.URL.Path,
			"status", status, "bytes", sw.Bytes(), "duration_ms", float64(took.Microseconds()) / 1000}
		if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
			attrs = append(attrs, "trace_id", sc.TraceID().String())
		}
		level := slog.LevelInfo
		if info.err != nil {
			attrs = append(attrs, "reason", string(apperr.ReasonOf(info.err)))
			if status >= 500 {
				level = slog.LevelError
				attrs = append(attrs, "err", info.err)
			}
		}
		h.o.Log.Log(ctx, level, "http request", attrs...)
	})
}

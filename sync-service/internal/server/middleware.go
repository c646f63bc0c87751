package server

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/httpobs"
	"github.com/lurus-switch/lurus-switch/lurus-common/requestid"

	"github.com/lurus-switch/lurus-switch/sync-service/internal/service"
)

type middleware struct {
	maxBody  int64
	log      *slog.Logger
	requests *prometheus.CounterVec
	tracer   trace.Tracer
}

func newMiddleware(maxBody int64, reg prometheus.Registerer, log *slog.Logger) *middleware {
	m := &middleware{
		maxBody: maxBody,
		log:     log,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lurus_sync_http_requests_total", Help: "HTTP requests by route and status (101 for WebSocket upgrades).",
		}, []string{"route", "code"}),
		tracer: otel.Tracer("sync-service"),
	}
	reg.MustRegister(m.requests)
	return m
}

// wrap gives every request an id (X-Request-Id when it is a UUID or ULID),
// its remote trace context and a span, caps its body, and logs one line at
// its end. The query string is never logged: it may hold a ticket.
func (m *middleware) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestid.From(r.Header.Get(requestid.Header))
		w.Header().Set(requestid.Header, id)
		ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := m.tracer.Start(ctx, r.Method+" "+r.URL.Path, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		ctx = service.WithRequestID(ctx, id)
		r = r.WithContext(ctx)
		rec := httpobs.NewRecorder(w)
		if r.ContentLength > m.maxBody {
			service.WriteError(rec, apperr.Newf(apperr.ReasonBodyTooLarge, "body larger than %d bytes", m.maxBody))
		} else {
			r.Body = http.MaxBytesReader(rec, r.Body, m.maxBody)
			next.ServeHTTP(rec, r)
		}
		status := rec.Status()
		if status == 0 {
			status = http.StatusOK
		}
		route := r.Pattern
		if route == "" || route == "/" {
			route = "other"
		}
		m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
		attrs := []any{"request_id", id, "method", r.Method, "path", r.URL.Path, "status", status,
			"duration_ms", time.Since(start).Milliseconds(), "remote", r.RemoteAddr}
		if sc := span.SpanContext(); sc.HasTraceID() {
			attrs = append(attrs, "trace_id", sc.TraceID().String())
		} else if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
			attrs = append(attrs, "trace_id", sc.TraceID().String())
		}
		m.log.InfoContext(ctx, "request", attrs...)
	})
}

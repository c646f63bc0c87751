package server

import (
	"bufio"
	"crypto/rand"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"

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
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = ulid.MustNew(ulid.Now(), rand.Reader).String()
		}
		w.Header().Set("X-Request-Id", id)
		ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := m.tracer.Start(ctx, r.Method+" "+r.URL.Path, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		ctx = service.WithRequestID(ctx, id)
		r = r.WithContext(ctx)
		rec := &recorder{ResponseWriter: w}
		if r.ContentLength > m.maxBody {
			service.WriteError(rec, apperr.Newf(apperr.ReasonBodyTooLarge, "body larger than %d bytes", m.maxBody))
		} else {
			r.Body = http.MaxBytesReader(rec, r.Body, m.maxBody)
			next.ServeHTTP(rec, r)
		}
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		route := r.Pattern
		if route == "" || route == "/" {
			route = "other"
		}
		m.requests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
		attrs := []any{"request_id", id, "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"duration_ms", time.Since(start).Milliseconds(), "remote", r.RemoteAddr}
		if sc := span.SpanContext(); sc.HasTraceID() {
			attrs = append(attrs, "trace_id", sc.TraceID().String())
		} else if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
			attrs = append(attrs, "trace_id", sc.TraceID().String())
		}
		m.log.InfoContext(ctx, "request", attrs...)
	})
}

// validRequestID accepts a ULID or a UUID in its canonical form.
func validRequestID(s string) bool {
	if _, err := ulid.ParseStrict(s); err == nil {
		return true
	}
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return true
}

// recorder remembers the status; it passes Hijack through (the WebSocket
// upgrade needs it) and records 101 for a hijacked connection.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Hijack implements http.Hijacker.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	c, brw, err := h.Hijack()
	if err == nil {
		r.status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

// Unwrap lets http.ResponseController reach the original writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

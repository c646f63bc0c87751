package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	khttp "github.com/go-kratos/kratos/v2/transport/http"
	"github.com/gorilla/mux"
	"github.com/oklog/ulid/v2"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// HeaderRequestID carries the request id in and out.
const HeaderRequestID = "X-Request-Id"

// requestInfo is filled in as the request travels through the filters and
// read back by observe when it is done.
type requestInfo struct {
	id    string
	route string
	quiet bool
}

type infoKey struct{}

// RequestID returns the request id of ctx ("" outside a request).
func RequestID(ctx context.Context) string {
	if ri, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return ri.id
	}
	return ""
}

// observe is the outermost filter: request id, trace context, body cap,
// panic recovery, one log line and the metrics per request.
func observe(log *slog.Logger, m *Metrics, maxBody int64, enc khttp.EncodeErrorFunc) khttp.FilterFunc {
	tracer := otel.Tracer("provider-service")
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ri := &requestInfo{id: requestID(r.Header.Get(HeaderRequestID)), route: "unmatched"}
			w.Header().Set(HeaderRequestID, ri.id)
			ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
			ctx, span := tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer))
			defer span.End()
			ctx = context.WithValue(ctx, infoKey{}, ri)
			r = r.WithContext(ctx)
			sw := &statusWriter{ResponseWriter: w}
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					if sw.status == 0 {
						enc(sw, r, apperr.Internal(fmt.Errorf("panic: %v", p)))
					}
					log.ErrorContext(ctx, "panic serving request", "request_id", ri.id, "panic", fmt.Sprint(p))
				}
				status := sw.status
				if status == 0 {
					status = http.StatusOK
				}
				elapsed := time.Since(start)
				span.SetName(r.Method + " " + ri.route)
				m.Requests.WithLabelValues(ri.route, r.Method, strconv.Itoa(status)).Inc()
				m.Duration.WithLabelValues(ri.route, r.Method).Observe(elapsed.Seconds())
				level := slog.LevelInfo
				if ri.quiet && status < 400 {
					level = slog.LevelDebug
				}
				attrs := []slog.Attr{
					slog.String("request_id", ri.id), slog.String("method", r.Method), slog.String("route", ri.route),
					slog.String("path", r.URL.Path), slog.Int("status", status),
					slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000), slog.Int64("bytes", sw.bytes),
					slog.String("remote", r.RemoteAddr),
				}
				if sc := span.SpanContext(); sc.HasTraceID() {
					attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
				}
				log.LogAttrs(ctx, level, "request", attrs...)
			}()
			if maxBody > 0 && r.Body != nil {
				if r.ContentLength > maxBody {
					enc(sw, r, apperr.Newf(apperr.ReasonBodyTooLarge, "request body is larger than %d bytes", maxBody))
					return
				}
				r.Body = http.MaxBytesReader(sw, r.Body, maxBody)
			}
			next.ServeHTTP(sw, r)
		})
	}
}

// routeLabel records the matched route template (a low-cardinality label
// for metrics and logs). It runs inside the router, where the match is
// known.
func routeLabel(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ri, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
			if route := mux.CurrentRoute(r); route != nil {
				if t, err := route.GetPathTemplate(); err == nil {
					ri.route = t
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// quiet logs successful requests at debug: health checks and scrapes would
// drown everything else at info.
func quiet(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ri, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
			ri.quiet = true
		}
		next.ServeHTTP(w, r)
	})
}

// requestID keeps a client's id when it is a UUID or ULID, else makes one.
func requestID(in string) string {
	if validUUID(in) {
		return strings.ToLower(in)
	}
	if _, err := ulid.ParseStrict(in); err == nil && in != "" {
		return in
	}
	return ulid.Make().String()
}

func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if s[i] != '-' {
				return false
			}
		case !isHex(s[i]):
			return false
		}
	}
	return true
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

// WriteHeader records the first status written.
func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write counts the bytes written (an implicit 200 if no status came first).
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush lets streaming handlers flush through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

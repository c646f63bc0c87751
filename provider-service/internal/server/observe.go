package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	khttp "github.com/go-kratos/kratos/v2/transport/http"
	"github.com/gorilla/mux"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/httpobs"
	"github.com/lurus-switch/lurus-switch/lurus-common/requestid"
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
			ri := &requestInfo{id: requestid.From(r.Header.Get(HeaderRequestID)), route: "unmatched"}
			w.Header().Set(HeaderRequestID, ri.id)
			ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
			ctx, span := tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer))
			defer span.End()
			ctx = context.WithValue(ctx, infoKey{}, ri)
			r = r.WithContext(ctx)
			sw := httpobs.NewRecorder(w)
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					if sw.Status() == 0 {
						enc(sw, r, apperr.Internal(fmt.Errorf("panic: %v", p)))
					}
					log.ErrorContext(ctx, "panic serving request", "request_id", ri.id, "panic", fmt.Sprint(p))
				}
				status := sw.Status()
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
					slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000), slog.Int64("bytes", sw.Bytes()),
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

package edge

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/httpobs"
	"github.com/lurus-switch/lurus-switch/lurus-common/requestid"
)

// RouteUnmatched is the route of a request no route took (a 404, or a
// request refused before routing).
const RouteUnmatched = "unmatched"

// Access is the one request middleware of every service. For each request
// it takes the request id (X-Request-Id when it is a UUID or ULID, else a
// new one) and echoes it, continues the caller's trace (traceparent) in a
// server span, caps the body, turns a panic into 500 INTERNAL, and at the
// end writes one log line and hands the outcome to Observe for metrics.
// Only the path is logged, never the query string (it may hold a ticket
// or a key).
type Access struct {
	// Log receives the line: level Error for a 5xx, Debug for a quiet
	// route (SetQuiet) that succeeded, else Info (nil: slog.Default()).
	Log *slog.Logger
	// Message is the line's msg ("request" when empty).
	Message string
	// MaxBodyBytes caps request bodies (0: no cap). A declared larger body
	// is refused at once with 413 BODY_TOO_LARGE; a longer one fails while
	// it is read (http.MaxBytesError).
	MaxBodyBytes int64
	// Observe, when set, is called once per request after it is served,
	// for the service's own metrics.
	Observe func(r *http.Request, e Entry)
}

// Entry is what Access learned about one served request.
type Entry struct {
	RequestID string
	// Route is the route template (SetRoute), else the net/http pattern
	// that matched, else RouteUnmatched.
	Route    string
	Status   int
	Bytes    int64
	Duration time.Duration
	// Err is the error the answer rendered (SetError), if any.
	Err error
}

type infoKey struct{}

// info travels in the request context from Access to the router and the
// error writer and back.
type info struct {
	id    string
	route string
	quiet bool
	err   error
}

func infoFrom(ctx context.Context) *info {
	i, _ := ctx.Value(infoKey{}).(*info)
	return i
}

// RequestID returns the id Access gave the request of ctx ("" outside
// one).
func RequestID(ctx context.Context) string {
	if i := infoFrom(ctx); i != nil {
		return i.id
	}
	return ""
}

// SetRoute records the matched route template of the request of ctx (a
// low-cardinality label for logs, metrics and the span name).
func SetRoute(ctx context.Context, route string) {
	if i := infoFrom(ctx); i != nil {
		i.route = route
	}
}

// SetQuiet logs the request of ctx at Debug when it succeeds: health
// checks and scrapes would drown everything else at Info.
func SetQuiet(ctx context.Context) {
	if i := infoFrom(ctx); i != nil {
		i.quiet = true
	}
}

// SetError records the error the request of ctx is answered with: its
// reason goes on the log line, and for a 5xx the error itself.
func SetError(ctx context.Context, err error) {
	if i := infoFrom(ctx); i != nil {
		i.err = err
	}
}

var tracer = otel.Tracer("github.com/lurus-switch/lurus-switch/lurus-common/edge")

// Wrap returns next behind the middleware.
func (a Access) Wrap(next http.Handler) http.Handler {
	msg := a.Message
	if msg == "" {
		msg = "request"
	}
	if a.Log == nil {
		a.Log = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		in := &info{id: requestid.From(r.Header.Get(requestid.Header))}
		w.Header().Set(requestid.Header, in.id)
		ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, "HTTP "+r.Method, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		r = r.WithContext(context.WithValue(ctx, infoKey{}, in))
		rec := httpobs.NewRecorder(w)
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				a.Log.ErrorContext(ctx, "panic serving request", "request_id", in.id, "panic", fmt.Sprint(p))
				if rec.Status() == 0 {
					WriteError(rec, r, apperr.Internal(fmt.Errorf("panic: %v", p)))
				}
			}
			a.finish(r, rec, in, span, time.Since(start), msg)
		}()
		if a.MaxBodyBytes > 0 && r.Body != nil {
			if r.ContentLength > a.MaxBodyBytes {
				WriteError(rec, r, apperr.Newf(apperr.ReasonBodyTooLarge, "request body is larger than %d bytes", a.MaxBodyBytes))
				return
			}
			r.Body = http.MaxBytesReader(rec, r.Body, a.MaxBodyBytes)
		}
		next.ServeHTTP(rec, r)
	})
}

// finish ends the span, calls Observe and writes the log line.
func (a Access) finish(r *http.Request, rec *httpobs.Recorder, in *info, span trace.Span, took time.Duration, msg string) {
	e := Entry{RequestID: in.id, Route: in.route, Status: rec.Status(), Bytes: rec.Bytes(), Duration: took, Err: in.err}
	if e.Status == 0 {
		e.Status = http.StatusOK
	}
	if e.Route == "" {
		e.Route = r.Pattern // set by http.ServeMux on this very request
	}
	if e.Route == "" {
		e.Route = RouteUnmatched
	}
	span.SetName(r.Method + " " + e.Route)
	span.SetAttributes(attribute.String("http.route", e.Route), attribute.Int("http.status_code", e.Status),
		attribute.String("lurus.request_id", e.RequestID))
	if e.Status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(e.Status))
	}
	if a.Observe != nil {
		a.Observe(r, e)
	}
	attrs := []slog.Attr{
		slog.String("request_id", e.RequestID), slog.String("method", r.Method), slog.String("route", e.Route),
		slog.String("path", r.URL.Path), slog.Int("status", e.Status), slog.Int64("bytes", e.Bytes),
		slog.Float64("duration_ms", float64(took.Microseconds())/1000), slog.String("remote", r.RemoteAddr),
	}
	if sc := span.SpanContext(); sc.HasTraceID() {
		attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
	} else if sc := trace.SpanContextFromContext(r.Context()); sc.HasTraceID() {
		attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
	}
	level := slog.LevelInfo
	switch {
	case e.Status >= 500:
		level = slog.LevelError
	case in.quiet && e.Status < 400:
		level = slog.LevelDebug
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("reason", string(apperr.ReasonOf(e.Err))))
		if e.Status >= 500 {
			attrs = append(attrs, slog.Any("err", e.Err))
		}
	}
	a.Log.LogAttrs(r.Context(), level, msg, attrs...)
}

// Quiet marks every request through h quiet (SetQuiet): for operational
// routes (health checks, scrapes) whose successes would drown everything
// else at Info. It has the shape of a net/http (and Kratos) filter.
func Quiet(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetQuiet(r.Context())
		h.ServeHTTP(w, r)
	})
}

package edge

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// ReadyTimeout bounds one GET /ready: every check runs at once, and a
// check still running when it ends counts as failed.
const ReadyTimeout = 2 * time.Second

// Check is one dependency GET /ready asks: its name in the answer and a
// ping that returns nil when the dependency answers.
type Check struct {
	Name string
	Ping func(ctx context.Context) error
}

// Ready statuses and check results.
const (
	StatusOK          = "ok"
	StatusReady       = "ready"
	StatusUnavailable = "unavailable"
)

// ReadyBody is the body of GET /ready in every service (docs/operations.md):
// 200 {"status":"ready","checks":{name:"ok",...}}, or 503 with status
// "unavailable", each failed check "unavailable", and an error object
// DEPENDENCY_UNAVAILABLE naming the failed checks. Why a check failed goes
// to the log, never to the caller.
type ReadyBody struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
	Error  *apperr.BodyError `json:"error,omitempty"`
}

// HealthBody is the body of GET /health: {"status":"ok"} whenever the
// process serves HTTP.
type HealthBody struct {
	Status string `json:"status"`
}

// Health is the GET /health handler.
func Health() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, HealthBody{Status: StatusOK})
	})
}

// Ready is the GET /ready handler over checks; log receives each failure
// with its error (nil log: slog.Default()).
func Ready(checks []Check, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, body := Readiness(r.Context(), checks, log)
		WriteJSON(w, status, body)
	})
}

// Readiness runs checks concurrently within ReadyTimeout and returns the
// status and body of GET /ready.
func Readiness(ctx context.Context, checks []Check, log *slog.Logger) (int, ReadyBody) {
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() { errs[i] = c.Ping(ctx) })
	}
	wg.Wait()
	body := ReadyBody{Status: StatusReady, Checks: make(map[string]string, len(checks))}
	var failed []string
	for i, c := range checks {
		if errs[i] == nil {
			body.Checks[c.Name] = StatusOK
			continue
		}
		log.WarnContext(ctx, "not ready", "dependency", c.Name, "err", errs[i])
		body.Checks[c.Name] = StatusUnavailable
		failed = append(failed, c.Name)
	}
	if len(failed) == 0 {
		return http.StatusOK, body
	}
	body.Status = StatusUnavailable
	body.Error = &apperr.BodyError{Reason: string(apperr.ReasonDependencyDown),
		Message: "not ready: " + strings.Join(failed, ", ") + " unavailable"}
	return http.StatusServiceUnavailable, body
}

// Ops answers the three operational routes of every service: GET /health
// (Health), GET /ready over checks (Ready) and GET /metrics (metrics, e.g.
// telemetry.MetricsHandler). Mount it on those three paths with the
// framework's router, which keeps the method rule; it records the path as
// the request's route (SetRoute) and answers 404 for any other path.
func Ops(checks []Check, log *slog.Logger, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/health", Health())
	mux.Handle("/ready", Ready(checks, log))
	mux.Handle("/metrics", metrics)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r) // sets r.Pattern
		if r.Pattern != "" {
			SetRoute(r.Context(), r.Pattern)
		}
	})
}

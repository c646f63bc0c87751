package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

func TestAccess(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		if RequestID(r.Context()) == "" {
			t.Error("no request id in the handler's context")
		}
		_, _ = w.Write([]byte("hello"))
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		var sink bytes.Buffer
		if _, err := sink.ReadFrom(r.Body); err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				WriteError(w, r, apperr.New(apperr.ReasonBodyTooLarge, "too large"))
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("GET /quiet", Quiet(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	mux.Handle("GET /quiet-fail", Quiet(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, apperr.New(apperr.ReasonDependencyDown, "down"))
	})))
	mux.HandleFunc("GET /routed", func(w http.ResponseWriter, r *http.Request) { SetRoute(r.Context(), "/routed/{x}") })
	mux.HandleFunc("GET /panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, apperr.Internal(errors.New("pool exhausted")))
	})
	var logs bytes.Buffer
	var seen []Entry
	h := Access{Log: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), MaxBodyBytes: 8,
		Observe: func(_ *http.Request, e Entry) { seen = append(seen, e) }}.Wrap(mux)

	for _, tt := range []struct {
		name, method, target, body string
		length                     int64 // ContentLength to declare; -1 hides it
		status                     int
		route, level, reason       string
	}{
		{"pattern route", "GET", "/items/7?ticket=tkt_secret", "", 0, 200, "GET /items/{id}", "INFO", ""},
		{"unmatched", "GET", "/nope", "", 0, 404, "unmatched", "INFO", ""},
		{"declared too large", "POST", "/echo", "0123456789", 10, 413, "unmatched", "INFO", "BODY_TOO_LARGE"},
		{"read too large", "POST", "/echo", "0123456789", -1, 413, "POST /echo", "INFO", "BODY_TOO_LARGE"},
		{"quiet", "GET", "/quiet", "", 0, 200, "GET /quiet", "DEBUG", ""},
		{"a quiet route's failure is not quiet", "GET", "/quiet-fail", "", 0, 503, "GET /quiet-fail", "ERROR", "DEPENDENCY_UNAVAILABLE"},
		{"route set by the router", "GET", "/routed", "", 0, 200, "/routed/{x}", "INFO", ""},
		{"panic", "GET", "/panic", "", 0, 500, "GET /panic", "ERROR", "INTERNAL"},
		{"internal error", "GET", "/fail", "", 0, 500, "GET /fail", "ERROR", "INTERNAL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			req := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			req.ContentLength = tt.length
			req.Header.Set("X-Request-Id", "01JNKQ8Z0000000000000000AB")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status || rec.Header().Get("X-Request-Id") != "01JNKQ8Z0000000000000000AB" {
				t.Fatalf("got %d, id %q", rec.Code, rec.Header().Get("X-Request-Id"))
			}
			var line map[string]any
			if err := json.Unmarshal(logs.Bytes()[bytes.LastIndexByte(logs.Bytes()[:logs.Len()-1], '\n')+1:], &line); err != nil {
				t.Fatalf("%v: %s", err, logs.String())
			}
			if line["msg"] != "request" || line["route"] != tt.route || line["level"] != tt.level || line["status"] != float64(tt.status) ||
				line["request_id"] != "01JNKQ8Z0000000000000000AB" || line["path"] != req.URL.Path {
				t.Fatalf("log line %v", line)
			}
			if got, _ := line["reason"].(string); got != tt.reason {
				t.Fatalf("reason %q, want %q", got, tt.reason)
			}
			if e := seen[len(seen)-1]; e.Route != tt.route || e.Status != tt.status {
				t.Fatalf("observed %+v", e)
			}
			for _, secret := range []string{"tkt_secret", "pool exhausted", "boom"} {
				if strings.Contains(rec.Body.String(), secret) {
					t.Fatalf("%q reached the caller: %s", secret, rec.Body)
				}
			}
			if strings.Contains(logs.String(), "tkt_secret") {
				t.Fatal("the query string reached the log")
			}
		})
	}
}

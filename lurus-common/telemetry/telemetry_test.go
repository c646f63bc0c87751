package telemetry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
)

func TestRedactingHandler(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, "test", slog.LevelDebug)
	hdr := http.Header{"Authorization": {"Bearer sk-lurus-abcdefghijklmnop"}, "Accept": {"application/json"}}
	log.With("api_key", "plain-value-without-pattern").Info("calling upstream with sk-proj-1234567890abcdef",
		"authorization", "Bearer abc.def.ghi",
		"x-goog-api-key", "AIzaSyA-1234567890abcdefghijkl",
		"note", "user pasted sk-ant-api03-zzzzzzzzzz in chat",
		"err", errors.New("upstream said: invalid key sk-abcdef123456"),
		"headers", hdr,
		slog.Group("req", "token", "t0ps3cret", "path", "/v1/chat"),
		"google", "key AIzaSyB-1234567890abcdefghijkl here",
		"bearer_text", "got Bearer eyJhbGciOiJIUzI1NiJ9 from client",
	)
	out := buf.String()
	for _, leaked := range []string{"sk-lurus-abcdefghijklmnop", "sk-proj-1234567890abcdef", "abc.def.ghi",
		"AIzaSyA-1234567890abcdefghijkl", "sk-ant-api03", "sk-abcdef123456", "t0ps3cret",
		"plain-value-without-pattern", "AIzaSyB", "eyJhbGciOiJIUzI1NiJ9"} {
		if strings.Contains(out, leaked) {
			t.Errorf("secret %q leaked: %s", leaked, out)
		}
	}
	for _, kept := range []string{`"path":"/v1/chat"`, `"Accept":["application/json"]`, `"service":"test"`, "user pasted", "Bearer " + Redacted} {
		if !strings.Contains(out, kept) {
			t.Errorf("expected %s in %s", kept, out)
		}
	}
}

func TestParseLevel(t *testing.T) {
	if ParseLevel("debug") != slog.LevelDebug || ParseLevel("bogus") != slog.LevelInfo || ParseLevel("ERROR") != slog.LevelError {
		t.Fatal("ParseLevel")
	}
}

func TestMetricsHandler(t *testing.T) {
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "lurus_test_total", Help: "t"})
	reg.MustRegister(c)
	c.Add(3)
	rec := httptest.NewRecorder()
	MetricsHandler(reg).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	if !strings.Contains(body, "lurus_test_total 3") || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("metrics body: %.300s", body)
	}
}

func TestTracingOffWithoutEnv(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	if TracingEnabled() {
		t.Fatal("enabled without endpoint")
	}
	shutdown, err := SetupTracing(context.Background(), "svc")
	if err != nil {
		t.Fatal(err)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := otel.GetTextMapPropagator().Fields(); len(got) == 0 {
		t.Fatal("propagator not installed")
	}
}

func TestTracingExportsToOTLPEndpoint(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/traces" {
			hits.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_SDK_DISABLED", "")
	shutdown, err := SetupTracing(context.Background(), "svc")
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("t").Start(context.Background(), "op")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if hits.Load() == 0 {
		t.Fatal("no span reached the OTLP endpoint")
	}
}

func TestServePprof(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := ServePprof(ctx, "", slog.Default()); err != nil {
		t.Fatal("empty address must be a no-op")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0") // pick a free port
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if err := ServePprof(ctx, addr, slog.Default()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func BenchmarkRedactingHandler(b *testing.B) {
	log := NewLogger(io.Discard, "bench", slog.LevelInfo)
	b.ReportAllocs()
	for b.Loop() {
		log.Info("request", "request_id", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "route", "/v1/chat/completions",
			"model", "gpt-4o-mini", "status", 200, "latency_ms", 3, "user_agent", "OpenAI/Go 3.98.0")
	}
}

// The fast path (nothing to redact: the record goes on unchanged) must
// still catch a secret in the last attribute, under a secret name of any
// kind, and in the message.
func TestRedactingHandlerFastPath(t *testing.T) {
	for _, tc := range []struct {
		name   string
		log    func(*slog.Logger)
		leaked string
		kept   []string
	}{
		{"clean", func(l *slog.Logger) {
			l.Info("request", "request_id", "01J0", "status", 200, "latency_us", int64(12), "model", "gpt-4o")
		}, "", []string{`"request_id":"01J0"`, `"status":200`, `"model":"gpt-4o"`}},
		{"last attribute", func(l *slog.Logger) {
			l.Info("request", "request_id", "01J0", "user_agent", "curl sk-lurus-0123456789abcdef")
		}, "sk-lurus-0123456789abcdef", []string{`"request_id":"01J0"`}},
		{"secret name, number value", func(l *slog.Logger) {
			l.Info("request", "request_id", "01J0", "Access-Token", 987654321)
		}, "987654321", []string{`"request_id":"01J0"`}},
		{"message", func(l *slog.Logger) { l.Info("key sk-lurus-0123456789abcdef refused", "n", 1) },
			"sk-lurus-0123456789abcdef", []string{`"n":1`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tc.log(NewLogger(&buf, "test", slog.LevelInfo))
			out := buf.String()
			if tc.leaked != "" && strings.Contains(out, tc.leaked) {
				t.Fatalf("secret leaked: %s", out)
			}
			for _, k := range tc.kept {
				if !strings.Contains(out, k) {
					t.Fatalf("expected %s in %s", k, out)
				}
			}
		})
	}
}

func TestIsSecretKey(t *testing.T) {
	for name, want := range map[string]bool{
		"Authorization": true, "x-api-key": true, "X_Goog_Api_Key": true, "ADMIN-TOKEN": true,
		"internal_token": true, "Set-Cookie": true, "key": true, "request_id": false, "key_id": false,
		"tokens": false, "": false, "a-very-long-attribute-name-that-is-not-secret": false,
	} {
		if got := IsSecretKey(name); got != want {
			t.Errorf("IsSecretKey(%q) = %v, want %v", name, got, want)
		}
	}
	for k := range secretKeys {
		if len(k) > maxSecretKey {
			t.Errorf("secret key %q is longer than maxSecretKey", k)
		}
	}
}

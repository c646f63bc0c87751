package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/authguard"
	"github.com/lurus-switch/lurus-switch/lurus-common/clientip"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/eventid"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/keyauth"
	"github.com/lurus-switch/lurus-switch/sync-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/sync-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/sync-service/internal/service"
)

// oneKey accepts any key as usr_resume's.
type oneKey struct{}

func (oneKey) Authenticate(context.Context, string, netip.Addr) (keyauth.Info, error) {
	return keyauth.Info{KeyID: "key_resume", UserID: "usr_resume", UserActive: true}, nil
}
func (oneKey) Hash(key string) string { return key }

// noState is a StateSource the refused upgrades never reach.
type noState struct{}

func (noState) SyncState(context.Context, string) (internalapi.SyncState, error) {
	return internalapi.SyncState{}, errors.New("not expected")
}

// failingFeed fails every subscription with err.
type failingFeed struct{ err error }

func (f failingFeed) Subscribe(context.Context, string, string) (*natsbus.Subscription, error) {
	return nil, f.err
}

// A resume whose replay fails (timed out, its live events overflowed the
// buffer, JetStream did not answer) is refused like one beyond
// ws.max_resumes: 503 UNAVAILABLE with Retry-After: 1, so clients retry the
// same resume in a second. Before, it got 503 DEPENDENCY_UNAVAILABLE
// without Retry-After, and after a restart clients backed off for tens of
// seconds.
func TestFailedResumeIsRefusedWithRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		wantFailed float64 // lurus_sync_resumes_total{result="failed"}
	}{
		{name: "replay timed out", err: fmt.Errorf("events: replay: %w", context.DeadlineExceeded), wantFailed: 1},
		{name: "replay overflowed", err: natsbus.ErrSlowSubscriber, wantFailed: 1},
		{name: "replay consumer failed", err: errors.New("events: replay consumer: nats: timeout"), wantFailed: 1},
		{name: "max resumes running", err: natsbus.ErrReplayBusy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg conf.Config
			cfg.SetDefaults()
			var guardCfg authguard.Config
			guardCfg.SetDefaults()
			guard, err := authguard.New(guardCfg)
			if err != nil {
				t.Fatal(err)
			}
			sessions := biz.NewSessionRegistry()
			metrics := service.NewMetrics(prometheus.NewRegistry(), sessions)
			ws := service.NewWS(service.WSDeps{
				Keys: oneKey{}, Origins: biz.NewOriginPolicy(nil), Sessions: sessions,
				Feed: failingFeed{tc.err}, State: noState{}, Metrics: metrics,
				Log: slog.New(slog.DiscardHandler), Addr: clientip.New(nil), Guard: guard,
			}, cfg.WS)
			req := httptest.NewRequest(http.MethodGet, "/ws/sync?device_id=dev-1&last_event_id="+eventid.New(), nil)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			req.Header.Set("Authorization", "Bearer k")
			rec := httptest.NewRecorder()
			ws.ServeHTTP(rec, req)

			var body apperr.Body
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" || body.Error.Reason != string(apperr.ReasonUnavailable) {
				t.Errorf("got %d, Retry-After %q, body %s; want 503 %s with Retry-After: 1",
					rec.Code, rec.Header().Get("Retry-After"), rec.Body.Bytes(), apperr.ReasonUnavailable)
			}
			if got := testutil.ToFloat64(metrics.Resumes.WithLabelValues("failed")); got != tc.wantFailed {
				t.Errorf("resumes_total{result=failed} = %v, want %v", got, tc.wantFailed)
			}
			if n, _ := sessions.Counts(); n != 0 {
				t.Errorf("%d sessions left registered after the refusal", n)
			}
		})
	}
}

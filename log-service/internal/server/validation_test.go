package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

func TestParameterValidation(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UTC()
	tests := []struct {
		name, path string
		status     int
		reason     apperr.Reason
		message    string // substring
	}{
		{"bad from", "/api/v1/logs" + q("from", "yesterday"), 400, apperr.ReasonInvalidTimeRange, "RFC 3339"},
		{"date without time", "/api/v1/stats/summary" + q("to", "2025-01-31"), 400, apperr.ReasonInvalidTimeRange, "RFC 3339"},
		{"from after to", "/api/v1/stats/summary" + q("from", rfc(now), "to", rfc(now.Add(-time.Hour))), 400, apperr.ReasonInvalidTimeRange, "before"},
		{"range too long", "/api/v1/stats/daily" + q("from", rfc(now.Add(-100*24*time.Hour)), "to", rfc(now)), 400, apperr.ReasonInvalidTimeRange, "93 days"},
		{"limit zero", "/api/v1/logs" + q("limit", "0"), 400, apperr.ReasonInvalidArgument, "1..1000"},
		{"limit too big", "/api/v1/stats/models" + q("limit", "1001"), 400, apperr.ReasonInvalidArgument, "1..1000"},
		{"limit not a number", "/api/v1/logs" + q("limit", "ten"), 400, apperr.ReasonInvalidArgument, "integer"},
		{"unknown parameter", "/api/v1/logs" + q("user", "usr_1"), 400, apperr.ReasonInvalidArgument, `"user"`},
		{"repeated parameter", "/api/v1/logs?model=a&model=b", 400, apperr.ReasonInvalidArgument, "more than once"},
		{"parameter too long", "/api/v1/logs" + q("model", strings.Repeat("m", 300)), 400, apperr.ReasonInvalidArgument, "longer"},
		{"bad cursor", "/api/v1/logs" + q("cursor", "not-a-cursor"), 400, apperr.ReasonInvalidCursor, "cursor"},
		{"bad status class", "/api/v1/logs" + q("status_class", "6xx"), 400, apperr.ReasonInvalidArgument, "status_class"},
		{"bad stream", "/api/v1/logs" + q("stream", "yes"), 400, apperr.ReasonInvalidArgument, "stream"},
		{"bad sort", "/api/v1/stats/users" + q("sort", "cost"), 400, apperr.ReasonInvalidArgument, "sort"},
		{"key filter on a rollup route", "/api/v1/stats/hourly" + q("key_id", "key_1"), 400, apperr.ReasonInvalidArgument, "key_id"},
		{"limit on a series", "/api/v1/stats/daily" + q("limit", "5"), 400, apperr.ReasonInvalidArgument, `"limit"`},
		{"query on get", "/api/v1/logs/abc" + q("x", "1"), 400, apperr.ReasonInvalidArgument, "no query"},
		{"unknown route", "/api/v1/nope", 404, apperr.ReasonRouteNotFound, "/api/v1/nope"},
		{"missing log", "/api/v1/logs/01JNKQ8Z0000000000000000AA", 404, apperr.ReasonLogNotFound, "01JNKQ8Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, raw := e.call(t, http.MethodGet, tt.path, adminToken, nil)
			b := wantError(t, status, raw, tt.status, tt.reason)
			if !strings.Contains(b.Error.Message, tt.message) {
				t.Fatalf("message %q lacks %q", b.Error.Message, tt.message)
			}
		})
	}
	status, raw := e.call(t, http.MethodDelete, "/api/v1/logs", adminToken, nil)
	wantError(t, status, raw, 404, apperr.ReasonRouteNotFound)
}

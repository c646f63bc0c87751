package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/golden"

	"github.com/lurus-switch/lurus-switch/log-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/log-service/internal/loadgen"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

// TestListFiltersAndPages walks GET /api/v1/logs with filters, following
// next_cursor, and compares with the fixture filtered here.
func TestListFiltersAndPages(t *testing.T) {
	e := newEnv(t)
	recs := loadgen.Records("list", 300)
	e.insert(t, recs)
	window := []string{"from", rfc(loadgen.Base), "to", rfc(loadgen.Base.Add(time.Hour))}
	for _, tc := range []struct {
		name   string
		params []string
		keep   func(biz.Record) bool
	}{
		{"everything", nil, func(biz.Record) bool { return true }},
		{"5xx", []string{"status_class", "5xx"}, func(r biz.Record) bool { return r.StatusCode >= 500 }},
		{"4xx streams", []string{"status_class", "4xx", "stream", "true"}, func(r biz.Record) bool { return r.StatusCode/100 == 4 && r.Stream }},
		{"user and model", []string{"user_id", "usr_2", "model", "gpt-4o"}, func(r biz.Record) bool { return r.UserID == "usr_2" && r.Model == "gpt-4o" }},
		{"key and provider", []string{"key_id", "key_4", "provider_id", "prv_0"}, func(r biz.Record) bool { return r.KeyID == "key_4" && r.ProviderID == "prv_0" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			for i := len(recs) - 1; i >= 0; i-- { // newest first
				if tc.keep(recs[i]) {
					want = append(want, recs[i].RequestID)
				}
			}
			var got []string
			params := append(append([]string{"limit", "23"}, window...), tc.params...)
			cursor := []string{}
			for page := 0; page < 50; page++ {
				var p biz.Page
				e.get(t, "/api/v1/logs"+q(append(params, cursor...)...), adminToken, &p)
				for _, it := range p.Items {
					got = append(got, it.RequestID)
				}
				if p.NextCursor == nil {
					break
				}
				cursor = []string{"cursor", *p.NextCursor}
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("got %d ids, want %d\n got %v\nwant %v", len(got), len(want), got, want)
			}
		})
	}
}

func TestGetLogGolden(t *testing.T) {
	e := newEnv(t)
	rec := loadgen.Record("golden", 3)
	e.insert(t, []biz.Record{rec})
	status, raw := e.call(t, http.MethodGet, "/api/v1/logs/"+rec.RequestID, adminToken, nil)
	if status != 200 {
		t.Fatalf("%d %s", status, raw)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m["inserted_at"] == "" {
		t.Fatal("no inserted_at")
	}
	m["inserted_at"] = "<set by the server>"
	stable, _ := json.Marshal(m)
	golden.JSONBytes(t, "get_log.json", stable)

	var s json.RawMessage
	e.get(t, "/api/v1/stats/summary"+q("from", rfc(loadgen.Base), "to", rfc(loadgen.Base.Add(time.Hour))), adminToken, &s)
	golden.JSONBytes(t, "summary_one_request.json", s)
	status, raw = e.call(t, http.MethodGet, "/api/v1/logs"+q("from", "31/01/2025"), adminToken, nil)
	wantError(t, status, raw, 400, apperr.ReasonInvalidTimeRange)
	golden.JSONBytes(t, "error_bad_time.json", raw)
}

// TestBatchRoute: validated as a whole before anything is written, and
// idempotent by request id.
func TestBatchRoute(t *testing.T) {
	e := newEnv(t)
	recs := loadgen.Records("batch", 20)
	body := func(rs []biz.Record) []byte {
		raw, err := json.Marshal(map[string]any{"records": rs})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	post := func(b []byte) (int, []byte) {
		return e.call(t, http.MethodPost, "/api/v1/logs/batch", internalToken, b)
	}

	bad := append([]biz.Record{}, recs...)
	bad[7].RequestID = ""
	status, raw := post(body(bad))
	if b := wantError(t, status, raw, 400, biz.ReasonInvalidRecord); !strings.Contains(b.Error.Message, "records[7]") {
		t.Fatalf("message %q does not point at the record", b.Error.Message)
	}
	if n := e.db.Count(t, "request_log"); n != 0 {
		t.Fatalf("an invalid batch wrote %d rows", n)
	}
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
		reason apperr.Reason
	}{
		{"malformed", []byte(`{"records":[`), 400, apperr.ReasonMalformedJSON},
		{"empty", []byte(`{"records":[]}`), 400, apperr.ReasonInvalidArgument},
		{"too many records", body(loadgen.Records("many", 51)), 413, apperr.ReasonBodyTooLarge},
		{"body over the cap", []byte(`{"records":[{"user_agent":"` + strings.Repeat("x", 70<<10) + `"}]}`), 413, apperr.ReasonBodyTooLarge},
		{"bad time", []byte(`{"records":[{"request_id":"r1","created_at":"yesterday"}]}`), 400, apperr.ReasonMalformedJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := post(tc.body)
			wantError(t, status, raw, tc.status, tc.reason)
		})
	}

	for round, want := range []string{`{"received":20,"inserted":20,"duplicates":0}`, `{"received":20,"inserted":0,"duplicates":20}`} {
		status, raw := post(body(recs))
		if status != 200 || strings.TrimSpace(string(raw)) != want {
			t.Fatalf("round %d: %d %s, want %s", round, status, raw, want)
		}
	}
	overlap := append(loadgen.Records("batch", 25)[15:], recs[0]) // 5 stored, 5 new, 1 stored
	status, raw = post(body(overlap))
	if want := `{"received":11,"inserted":5,"duplicates":6}`; status != 200 || strings.TrimSpace(string(raw)) != want {
		t.Fatalf("overlap: %d %s, want %s", status, raw, want)
	}
	if n := e.db.Count(t, "request_log"); n != 25 {
		t.Fatalf("rows = %d, want 25", n)
	}
	var got biz.Entry
	e.get(t, "/api/v1/logs/"+recs[4].RequestID, adminToken, &got)
	if got.Record != recs[4] {
		t.Fatalf("stored %+v\nwant %+v", got.Record, recs[4])
	}
}

// TestUpstreamFormat posts log.write records as the gateway encodes them
// (events.LogRecord, which omits an empty upstream_format) and reads them
// back: the list and the single-log routes always carry upstream_format,
// the family that served a translated call or "" when no provider was
// tried.
func TestUpstreamFormat(t *testing.T) {
	e := newEnv(t)
	translated := loadgen.Record("ufmt", 1)
	translated.APIFormat, translated.UpstreamFormat = "anthropic", "gemini"
	refused := loadgen.Record("ufmt", 2)
	refused.UpstreamFormat = ""
	raw, err := json.Marshal(map[string]any{"records": []events.LogRecord{events.LogRecord(translated), events.LogRecord(refused)}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(raw), `"upstream_format"`) != 1 {
		t.Fatalf("the event encoding no longer omits an empty upstream_format: %s", raw)
	}
	if status, body := e.call(t, http.MethodPost, "/api/v1/logs/batch", internalToken, raw); status != 200 {
		t.Fatalf("batch: %d %s", status, body)
	}
	want := map[string]string{translated.RequestID: "gemini", refused.RequestID: ""}

	status, body := e.call(t, http.MethodGet, "/api/v1/logs"+q("from", rfc(loadgen.Base), "to", rfc(loadgen.Base.Add(time.Hour))), adminToken, nil)
	if status != 200 {
		t.Fatalf("list: %d %s", status, body)
	}
	var page struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(body, &page); err != nil || len(page.Items) != 2 {
		t.Fatalf("list: %v %s", err, body)
	}
	for _, it := range page.Items {
		id, _ := it["request_id"].(string)
		if got, ok := it["upstream_format"]; !ok || got != want[id] {
			t.Fatalf("list item %s: upstream_format = %v (present %t), want %q", id, got, ok, want[id])
		}
	}
	for id, uf := range want {
		status, body := e.call(t, http.MethodGet, "/api/v1/logs/"+id, adminToken, nil)
		var one map[string]any
		if status != 200 || json.Unmarshal(body, &one) != nil {
			t.Fatalf("get %s: %d %s", id, status, body)
		}
		if got, ok := one["upstream_format"]; !ok || got != uf {
			t.Fatalf("get %s: upstream_format = %v (present %t), want %q", id, got, ok, uf)
		}
	}
	var got biz.Entry
	e.get(t, "/api/v1/logs/"+translated.RequestID, adminToken, &got)
	if got.Record != translated {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got.Record, translated)
	}
}

package biz

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

func validRecord() Record {
	return Record{RequestID: "01JD5X7Q8W0000000000000000", UserID: "usr_1", Model: "gpt-4o", StatusCode: 200,
		Attempts: 1, LatencyMs: 120, TTFBMs: 40, PromptTokens: 10, CompletionTokens: 5,
		CreatedAt: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func TestRecordValidate(t *testing.T) {
	now := time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		mutate func(*Record)
		want   string // substring of the message; "" = valid
	}{
		{"valid", func(*Record) {}, ""},
		{"refused request without user or model", func(r *Record) { r.UserID, r.Model, r.StatusCode = "", "", 401 }, ""},
		{"missing request id", func(r *Record) { r.RequestID = "" }, "request_id is required"},
		{"request id with space", func(r *Record) { r.RequestID = "a b" }, "request_id must be"},
		{"request id too long", func(r *Record) { r.RequestID = strings.Repeat("a", 129) }, "request_id must be"},
		{"user id too long", func(r *Record) { r.UserID = strings.Repeat("u", 129) }, "user_id is longer"},
		{"user agent too long", func(r *Record) { r.UserAgent = strings.Repeat("u", 1025) }, "user_agent is longer"},
		{"invalid utf-8", func(r *Record) { r.Model = "\xff" }, "model is not valid UTF-8"},
		{"status too big", func(r *Record) { r.StatusCode = 1000 }, "status_code"},
		{"negative status", func(r *Record) { r.StatusCode = -1 }, "status_code"},
		{"attempts overflow", func(r *Record) { r.Attempts = 70000 }, "attempts"},
		{"negative latency", func(r *Record) { r.LatencyMs = -1 }, "latency_ms"},
		{"latency overflow", func(r *Record) { r.TTFBMs = 1 << 32 }, "ttfb_ms"},
		{"negative tokens", func(r *Record) { r.ReasoningTokens = -3 }, "reasoning_tokens"},
		{"zero time", func(r *Record) { r.CreatedAt = time.Time{} }, "created_at is required"},
		{"far future", func(r *Record) { r.CreatedAt = now.Add(25 * time.Hour) }, "future"},
		{"near future is fine", func(r *Record) { r.CreatedAt = now.Add(23 * time.Hour) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRecord()
			tt.mutate(&r)
			err := r.Validate(now)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if apperr.ReasonOf(err) != ReasonInvalidRecord || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %s containing %q", err, ReasonInvalidRecord, tt.want)
			}
		})
	}
}

// TestEntryJSON: the API writes every field of the event, upstream_format
// even when empty (the event omits it), and inserted_at, and reads back
// what it wrote.
func TestEntryJSON(t *testing.T) {
	for _, uf := range []string{"", "gemini"} {
		r := validRecord()
		r.UpstreamFormat = uf
		e := Entry{Record: r, InsertedAt: time.Date(2025, 1, 1, 0, 0, 1, 0, time.UTC)}
		raw, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]any
		if err := json.Unmarshal(raw, &fields); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if got, ok := fields["upstream_format"]; !ok || got != uf {
			t.Errorf("upstream_format = %v (present %t), want %q: %s", got, ok, uf, raw)
		}
		if fields["inserted_at"] != "2025-01-01T00:00:01Z" || fields["request_id"] != r.RequestID {
			t.Errorf("fields lost: %s", raw)
		}
		var back Entry
		if err := json.Unmarshal(raw, &back); err != nil || back != e {
			t.Errorf("round trip: %+v, %v; want %+v", back, err, e)
		}
		if ev, _ := json.Marshal(events.LogRecord(r)); strings.Contains(string(ev), "upstream_format") != (uf != "") {
			t.Errorf("event encoding changed: %s", ev)
		}
	}
}

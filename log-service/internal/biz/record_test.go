package biz

import (
	"strings"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
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

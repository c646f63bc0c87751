package service

import (
	"context"
	"log/slog"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
)

// LogSink writes the one info line per request, then passes the outcome
// on to the event publisher.
type LogSink struct {
	Next biz.EventSink
	Log  *slog.Logger
}

// Emit implements biz.EventSink.
func (s *LogSink) Emit(o *biz.Outcome) {
	if s.Log.Enabled(context.Background(), slog.LevelInfo) {
		s.logLine(o)
	}
	s.Next.Emit(o)
}

func (s *LogSink) logLine(o *biz.Outcome) {
	attrs := []slog.Attr{
		slog.String("request_id", o.RequestID),
		slog.String("route", o.Endpoint.String()),
		slog.Int("status", o.StatusCode),
		slog.Int64("latency_us", o.FinishedAt.Sub(o.StartedAt).Microseconds()),
	}
	if o.ClientRequestID != "" {
		attrs = append(attrs, slog.String("client_request_id", o.ClientRequestID))
	}
	if o.TraceID != "" {
		attrs = append(attrs, slog.String("trace_id", o.TraceID))
	}
	if o.Model != "" {
		attrs = append(attrs, slog.String("model", o.Model), slog.String("provider", o.ProviderID),
			slog.Int("attempts", o.Attempts), slog.String("usage_source", o.UsageSource),
			slog.Int64("prompt_tokens", o.Usage.Prompt), slog.Int64("completion_tokens", o.Usage.Completion))
	}
	if o.ErrorReason != "" {
		attrs = append(attrs, slog.String("error_reason", o.ErrorReason))
	}
	s.Log.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
}

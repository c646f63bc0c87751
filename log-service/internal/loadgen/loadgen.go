// Package loadgen makes log.write load: a deterministic fixture of request
// records and a fast JetStream publisher for them. Tests and the
// bench-ingest tool use it.
package loadgen

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lurus-switch/lurus-switch/log-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
)

// Base is the created_at of Record(0).
var Base = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// Record returns the i-th record of a deterministic fixture: request ids
// "req-<prefix>-<i>", three users, four models, two providers, a status
// mix of 200/429/500, varied latencies and tokens, one second apart.
func Record(prefix string, i int) biz.Record {
	status := 200
	switch {
	case i%10 == 3:
		status = 500
	case i%10 == 7:
		status = 429
	}
	reason := ""
	if status >= 500 {
		reason = "UPSTREAM_ERROR"
	}
	return biz.Record{
		RequestID:        fmt.Sprintf("req-%s-%06d", prefix, i),
		TraceID:          fmt.Sprintf("%032x", i+1),
		UserID:           fmt.Sprintf("usr_%d", i%3),
		KeyID:            fmt.Sprintf("key_%d", i%6),
		Model:            []string{"gpt-4o", "gpt-4o-mini", "claude-sonnet", "gemini-pro"}[i%4],
		UpstreamModel:    "up-model",
		ProviderID:       fmt.Sprintf("prv_%d", i%2),
		APIFormat:        []string{"openai", "anthropic", "gemini"}[i%3],
		UpstreamFormat:   upstreamFormat(i, status),
		Endpoint:         "/v1/chat/completions",
		Stream:           i%2 == 0,
		StatusCode:       status,
		ErrorReason:      reason,
		Attempts:         1 + i%2,
		LatencyMs:        int64(50 + (i*37)%2000),
		TTFBMs:           int64((i * 13) % 700), // 0 for some: no first byte
		PromptTokens:     int64(100 + i%50),
		CompletionTokens: int64(20 + i%30),
		CachedTokens:     int64(i % 7),
		CacheWriteTokens: int64(i % 5),
		ReasoningTokens:  int64(i % 3),
		UsageSource:      "upstream",
		ClientIP:         "203.0.113.7",
		UserAgent:        "openai-go/3.0",
		CreatedAt:        Base.Add(time.Duration(i) * time.Second),
	}
}

// upstreamFormat is the fixture's upstream family: every fourth call was
// translated (it differs from the client's format), and a 429 was refused
// before any provider was tried ("").
func upstreamFormat(i, status int) string {
	formats := []string{"openai", "anthropic", "gemini"}
	switch {
	case status == 429:
		return ""
	case i%4 == 1:
		return formats[(i+1)%3]
	}
	return formats[i%3]
}

// Records returns Record(prefix, 0..n-1).
func Records(prefix string, n int) []biz.Record {
	out := make([]biz.Record, n)
	for i := range out {
		out[i] = Record(prefix, i)
	}
	return out
}

// Publish stores recs on subject as log.write envelopes, asynchronously
// with a bounded window, and returns once JetStream acknowledged all of
// them. The message id is the request id plus idSuffix: a suffix makes
// JetStream accept a replay of records it already holds (as a producer's
// outbox might send them again after the stream's duplicate window).
func Publish(ctx context.Context, js jetstream.JetStream, subject string, recs []biz.Record, idSuffix string) error {
	futures := make([]jetstream.PubAckFuture, 0, len(recs))
	for _, r := range recs {
		env, err := events.NewEnvelope(r.RequestID+idSuffix, events.TypeLogWrite, r.UserID, r.CreatedAt, events.LogRecord(r))
		if err != nil {
			return err
		}
		msg, err := natsbus.NewMsg(ctx, subject, env)
		if err != nil {
			return err
		}
		f, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(30*time.Second))
		if err != nil {
			return fmt.Errorf("publish %s: %w", r.RequestID, err)
		}
		futures = append(futures, f)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish %s: %w", f.Msg().Header.Get(jetstream.MsgIDHeader), err)
		}
	}
	return nil
}

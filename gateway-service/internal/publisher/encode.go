package publisher

import (
	"strconv"
	"time"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/gateway-service/internal/jsonstr"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

// The envelopes are written by hand: they are built for every request, and
// reflection-based encoding/json (data marshalled, then the envelope, then
// the data compacted again) was the publisher's largest CPU cost. The
// output decodes into events.Envelope / events.Usage / events.LogRecord
// exactly as json.Marshal's would (encode_test.go checks it).

// appendUsageEnvelope appends the billing.usage envelope of o.
func appendUsageEnvelope(b []byte, o *biz.Outcome, traceParent string) []byte {
	b = appendHead(b, o, events.TypeBillingUsage, traceParent)
	b = appendTokens(b, o.Usage)
	b = appendField(b, "usage_source", o.UsageSource)
	b = appendField(b, "status", o.Status)
	b = appendField(b, "reservation_id", o.Admission.ReservationID)
	if o.Admission.Micros != 0 || o.Admission.Tokens != 0 {
		b = appendInt(b, "reserved_micros", o.Admission.Micros)
		b = appendInt(b, "reserved_tokens", o.Admission.Tokens)
	}
	b = appendTime(b, "started_at", o.StartedAt)
	b = appendTime(b, "finished_at", o.FinishedAt)
	return append(b, `},"v":1}`...)
}

// appendLogEnvelope appends the log.write envelope of o.
func appendLogEnvelope(b []byte, o *biz.Outcome, traceParent string) []byte {
	b = appendHead(b, o, events.TypeLogWrite, traceParent)
	b = appendField(b, "trace_id", o.TraceID)
	b = appendInt(b, "status_code", int64(o.StatusCode))
	b = appendField(b, "error_reason", o.ErrorReason)
	b = appendInt(b, "attempts", int64(o.Attempts))
	b = appendInt(b, "latency_ms", o.FinishedAt.Sub(o.StartedAt).Milliseconds())
	b = appendInt(b, "ttfb_ms", o.TTFB.Milliseconds())
	b = appendTokens(b, o.Usage)
	b = appendField(b, "usage_source", o.UsageSource)
	ip := ""
	if o.ClientIP.IsValid() {
		ip = o.ClientIP.String()
	}
	b = appendField(b, "client_ip", ip)
	b = appendField(b, "user_agent", o.UserAgent)
	b = appendTime(b, "created_at", o.StartedAt)
	if o.Upstreamed {
		b = appendField(b, "upstream_format", o.UpstreamFormat.String())
	}
	return append(b, `},"v":1}`...)
}

// appendHead starts an envelope: its own fields (with the request's
// traceparent, which a batch message cannot carry in its headers) and the
// fields both payloads start with.
func appendHead(b []byte, o *biz.Outcome, typ, traceParent string) []byte {
	b = append(b, `{"id":`...)
	b = jsonstr.Append(b, o.RequestID)
	b = appendField(b, "type", typ)
	b = appendTime(b, "occurred_at", o.FinishedAt)
	if o.UserID != "" {
		b = appendField(b, "user_id", o.UserID)
	}
	if traceParent != "" {
		b = appendField(b, "traceparent", traceParent)
	}
	b = append(b, `,"data":{"request_id":`...)
	b = jsonstr.Append(b, o.RequestID)
	b = appendField(b, "user_id", o.UserID)
	b = appendField(b, "key_id", o.KeyID)
	b = appendField(b, "model", o.Model)
	b = appendField(b, "upstream_model", o.UpstreamModel)
	b = appendField(b, "provider_id", o.ProviderID)
	b = appendField(b, "api_format", o.Format.String())
	b = appendField(b, "endpoint", o.Endpoint.String())
	b = append(b, `,"stream":`...)
	return strconv.AppendBool(b, o.Stream)
}

func appendTokens(b []byte, u biz.Usage) []byte {
	b = appendInt(b, "prompt_tokens", u.Prompt)
	b = appendInt(b, "completion_tokens", u.Completion)
	b = appendInt(b, "cached_tokens", u.Cached)
	b = appendInt(b, "cache_write_tokens", u.CacheWrite)
	return appendInt(b, "reasoning_tokens", u.Reasoning)
}

func appendField(b []byte, k, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, k...)
	b = append(b, '"', ':')
	return jsonstr.Append(b, v)
}

func appendInt(b []byte, k string, v int64) []byte {
	b = append(b, ',', '"')
	b = append(b, k...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, v, 10)
}

func appendTime(b []byte, k string, t time.Time) []byte {
	b = append(b, ',', '"')
	b = append(b, k...)
	b = append(b, `":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

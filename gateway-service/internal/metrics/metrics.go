// Package metrics is the gateway's Prometheus instrumentation: the
// lurus_gateway_* series of DESIGN.md §7 on a private registry.
package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
)

// Names of every series, for the test that dashboards and alerts only use
// metrics that exist.
var Names = []string{
	"lurus_gateway_requests_total", "lurus_gateway_request_duration_seconds",
	"lurus_gateway_upstream_duration_seconds", "lurus_gateway_ttfb_seconds",
	"lurus_gateway_active_streams", "lurus_gateway_tokens_total", "lurus_gateway_retries_total",
	"lurus_gateway_breaker_state", "lurus_gateway_breaker_transitions_total",
	"lurus_gateway_events_queued", "lurus_gateway_events_outbox_bytes", "lurus_gateway_events_published_total",
	"lurus_gateway_events_lost_total",
	"lurus_gateway_admissions_total", "lurus_gateway_output_cap_enforced_total", "lurus_gateway_usage_over_hold_total",
	"lurus_gateway_rate_limited_total", "lurus_gateway_upstream_key_saturation",
}

// Metrics implements biz.Metrics and publisher.Metrics.
type Metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	upstream    *prometheus.HistogramVec
	ttfb        *prometheus.HistogramVec
	streams     prometheus.Gauge
	tokens      *prometheus.CounterVec
	retries     prometheus.Counter
	breaker     *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	queued      prometheus.Gauge
	outbox      prometheus.Gauge
	published   *prometheus.CounterVec
	lost        *prometheus.CounterVec
	admissions  *prometheus.CounterVec
	capCut      *prometheus.CounterVec
	overHold    *prometheus.CounterVec
	limited     *prometheus.CounterVec
	saturation  *prometheus.GaugeVec

	tokPrompt, tokCompletion, tokCached, tokCacheWrite, tokReasoning prometheus.Counter
}

// New registers the series on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lurus_gateway_requests_total",
			Help: "Requests by route, model, provider and status code."}, []string{"route", "model", "provider", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lurus_gateway_request_duration_seconds",
			Help: "Whole request duration.", Buckets: telemetry.LatencyBuckets}, []string{"route"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lurus_gateway_upstream_duration_seconds",
			Help: "Upstream attempt duration.", Buckets: telemetry.LatencyBuckets}, []string{"provider", "code"}),
		ttfb: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lurus_gateway_ttfb_seconds",
			Help: "Time to the first streamed byte sent to the client.", Buckets: telemetry.LatencyBuckets}, []string{"route"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lurus_gateway_active_streams", Help: "Streams being relayed."}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lurus_gateway_tokens_total",
			Help: "Tokens metered, by kind."}, []string{"kind"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Name: "lurus_gateway_retries_total",
			Help: "Upstream attempts after the first of a request."}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lurus_gateway_breaker_state",
			Help: "Circuit breaker state per provider key: 0 closed, 1 open, 2 half-open."}, []string{"provider", "key"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lurus_gateway_breaker_transitions_total",
			Help: "Circuit breaker state changes."}, []string{"provider", "key", "to"}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lurus_gateway_events_queued",
			Help: "Events waiting in the in-memory queue."}),
		outbox: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lurus_gateway_events_outbox_bytes",
			Help: "Bytes waiting in the file outbox."}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lurus_gateway_events_published_total",
			Help: "Events stored by JetStream, by subject."}, []string{"subject"}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lurus_gateway_events_lost_total",
			Help: "Events neither published nor stored in the file outbox (NATS unreachable and the outbox not writable), by subject: usage never billed, requests never logged."}, []string{"subject"}),
		admissions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lurus_gateway_admissions_total",
			Help: "Admissions by mode: local (from the key's lease, no round trip), extended (the request waited for the lease to be extended in Redis), reserved (leasing off: a reservation of its own); refill counts background extensions, which admit no request."}, []string{"mode"}),
		capCut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lurus_gateway_output_cap_enforced_total",
			Help: "Streams the gateway ended at their held output allowance because the provider generated past the cap it was told."}, []string{"provider"}),
		overHold: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lurus_gateway_usage_over_hold_total",
			Help: "Answers billed from upstream usage whose output exceeds the allowance held for them (the provider ignored the cap)."}, []string{"provider"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lurus_gateway_rate_limited_total",
			Help: "Refusals by a limit of the gateway's own, by scope (ip: failed authentications of a client address; key, user: their rate limits; upstream: an upstream key skipped at its limit) and kind (auth_failures, rpm, tpm, concurrency)."}, []string{"scope", "kind"}),
		saturation: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lurus_gateway_upstream_key_saturation",
			Help: "Share of an upstream key's RPM or TPM limit (the tighter) used in the current minute, as of the last admission against one of the provider's keys."}, []string{"provider"}),
	}
	reg.MustRegister(m.requests, m.duration, m.upstream, m.ttfb, m.streams, m.tokens, m.retries,
		m.breaker, m.transitions, m.queued, m.outbox, m.published, m.lost, m.admissions, m.capCut, m.overHold,
		m.limited, m.saturation)
	m.limited.WithLabelValues("ip", "auth_failures") // exported from the start, so rates see zeros
	for _, s := range []string{events.SubjectBillingUsage, events.SubjectLogWrite} {
		m.lost.WithLabelValues(s) // exported from the start, so increase() sees the first loss
	}
	m.tokPrompt = m.tokens.WithLabelValues("prompt")
	m.tokCompletion = m.tokens.WithLabelValues("completion")
	m.tokCached = m.tokens.WithLabelValues("cached")
	m.tokCacheWrite = m.tokens.WithLabelValues("cache_write")
	m.tokReasoning = m.tokens.WithLabelValues("reasoning")
	return m
}

// Request implements biz.Metrics.
func (m *Metrics) Request(route, model, provider string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, model, provider, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

// Upstream implements biz.Metrics.
func (m *Metrics) Upstream(provider string, code int, d time.Duration) {
	m.upstream.WithLabelValues(provider, strconv.Itoa(code)).Observe(d.Seconds())
}

// TTFB implements biz.Metrics.
func (m *Metrics) TTFB(route string, d time.Duration) {
	m.ttfb.WithLabelValues(route).Observe(d.Seconds())
}

// StreamStarted implements biz.Metrics.
func (m *Metrics) StreamStarted() { m.streams.Inc() }

// StreamEnded implements biz.Metrics.
func (m *Metrics) StreamEnded() { m.streams.Dec() }

// Tokens implements biz.Metrics.
func (m *Metrics) Tokens(u biz.Usage) {
	m.tokPrompt.Add(float64(u.Prompt))
	m.tokCompletion.Add(float64(u.Completion))
	m.tokCached.Add(float64(u.Cached))
	m.tokCacheWrite.Add(float64(u.CacheWrite))
	m.tokReasoning.Add(float64(u.Reasoning))
}

// Retry implements biz.Metrics.
func (m *Metrics) Retry() { m.retries.Inc() }

// Admission implements biz.Metrics.
func (m *Metrics) Admission(mode string) { m.admissions.WithLabelValues(mode).Inc() }

// OutputCapEnforced implements biz.Metrics.
func (m *Metrics) OutputCapEnforced(provider string) { m.capCut.WithLabelValues(provider).Inc() }

// UsageOverHold implements biz.Metrics.
func (m *Metrics) UsageOverHold(provider string) { m.overHold.WithLabelValues(provider).Inc() }

// RateLimited implements biz.Metrics.
func (m *Metrics) RateLimited(scope, kind string) { m.limited.WithLabelValues(scope, kind).Inc() }

// UpstreamSaturation implements biz.Metrics.
func (m *Metrics) UpstreamSaturation(provider string, used float64) {
	m.saturation.WithLabelValues(provider).Set(used)
}

// Breaker records a breaker state change.
func (m *Metrics) Breaker(provider, key string, to biz.BreakerState) {
	m.breaker.WithLabelValues(provider, key).Set(float64(to))
	m.transitions.WithLabelValues(provider, key, to.String()).Inc()
}

// Queued implements publisher.Metrics.
func (m *Metrics) Queued(n int) { m.queued.Set(float64(n)) }

// OutboxBytes implements publisher.Metrics.
func (m *Metrics) OutboxBytes(n int64) { m.outbox.Set(float64(n)) }

// Lost implements publisher.Metrics.
func (m *Metrics) Lost(subject string, n int) { m.lost.WithLabelValues(subject).Add(float64(n)) }

// Published implements publisher.Metrics.
func (m *Metrics) Published(subject string, n int) {
	m.published.WithLabelValues(subject).Add(float64(n))
}

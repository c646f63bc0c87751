// Package metrics defines billing-service's Prometheus metrics, with the
// seed's names (DESIGN.md §7) plus consumer lag, settle latency and
// settlement failures, registered on a private registry.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
)

// Metrics holds every billing metric.
type Metrics struct {
	HTTPRequests       *prometheus.CounterVec   // billing_http_requests_total{method,route,status}
	HTTPDuration       *prometheus.HistogramVec // billing_http_request_duration_seconds{route}
	BalanceChecks      *prometheus.CounterVec   // billing_balance_checks_total{source}
	UsageRecords       *prometheus.CounterVec   // billing_usage_records_total{status}
	TokensProcessed    *prometheus.CounterVec   // billing_tokens_processed_total{type}
	CostUSD            prometheus.Counter       // billing_cost_usd_total
	QuotaUpdates       prometheus.Counter       // billing_quota_updates_total
	LowBalanceAlerts   *prometheus.CounterVec   // billing_low_balance_alerts_total{type}
	EventsPublished    *prometheus.CounterVec   // billing_nats_events_published_total{type}
	ConsumerLag        prometheus.Gauge         // billing_consumer_lag
	SettleDuration     prometheus.Histogram     // billing_settle_duration_seconds
	SettlementFailures *prometheus.CounterVec   // billing_settlement_failures_total{reason}
	UsageRejected      *prometheus.CounterVec   // billing_usage_rejected_total{reason}
	SSEClients         prometheus.Gauge         // billing_sse_clients
	RateLimited        *prometheus.CounterVec   // billing_rate_limited_total{scope,kind}
}

// Names lists every metric name Metrics registers (dashboards and alert
// rules may use only these; a test checks they are exported).
var Names = []string{
	"billing_http_requests_total", "billing_http_request_duration_seconds", "billing_balance_checks_total",
	"billing_usage_records_total", "billing_tokens_processed_total", "billing_cost_usd_total",
	"billing_quota_updates_total", "billing_low_balance_alerts_total", "billing_nats_events_published_total",
	"billing_consumer_lag", "billing_settle_duration_seconds", "billing_settlement_failures_total",
	"billing_usage_rejected_total", "billing_sse_clients", "billing_rate_limited_total",
}

// New creates the metrics and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "billing_http_requests_total",
			Help: "HTTP requests by method, route and status."}, []string{"method", "route", "status"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "billing_http_request_duration_seconds",
			Help: "HTTP request latency by route.", Buckets: telemetry.LatencyBuckets}, []string{"route"}),
		BalanceChecks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "billing_balance_checks_total",
			Help: "Balance reads: key verification, account loads into Redis, /me and sync state."}, []string{"source"}),
		UsageRecords: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "billing_usage_records_total",
			Help: "Usage records inserted (replays not counted), by request status."}, []string{"status"}),
		TokensProcessed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "billing_tokens_processed_total",
			Help: "Tokens of settled usage by type."}, []string{"type"}),
		CostUSD: prometheus.NewCounter(prometheus.CounterOpts{Name: "billing_cost_usd_total",
			Help: "Cost of settled usage in USD (a float view of integer micro-USD, for dashboards only)."}),
		QuotaUpdates: prometheus.NewCounter(prometheus.CounterOpts{Name: "billing_quota_updates_total",
			Help: "quota.updated events (settlement, limit change, period reset)."}),
		LowBalanceAlerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "billing_low_balance_alerts_total",
			Help: "quota.low and quota.exhausted events by type."}, []string{"type"}),
		EventsPublished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "billing_nats_events_published_total",
			Help: "Messages published to NATS by type."}, []string{"type"}),
		ConsumerLag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "billing_consumer_lag",
			Help: "billing.usage messages not yet acked by the settlement consumer."}),
		SettleDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "billing_settle_duration_seconds",
			Help: "Time to settle one batch: transaction, mirror, events.", Buckets: telemetry.LatencyBuckets}),
		SettlementFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "billing_settlement_failures_total",
			Help: "Usages not settled: dead-lettered (no_price, unknown_user, invalid) or retried (transient)."}, []string{"reason"}),
		UsageRejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "billing_usage_rejected_total",
			Help: "Usages dead-lettered instead of settled because the upstream reported absurd usage: more tokens (tokens) " +
				"or cost (cost) than one request may have, or sums that would overflow (overflow)."}, []string{"reason"}),
		SSEClients: prometheus.NewGauge(prometheus.GaugeOpts{Name: "billing_sse_clients",
			Help: "Open sync SSE streams."}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "billing_rate_limited_total",
			Help: "Requests refused by an abuse cap: scope ip, kind auth_failures (429); scope user, kind sse_streams (429); " +
				"scope process, kind resumes (503)."}, []string{"scope", "kind"}),
	}
	// Known label values start at 0, so dashboards and alert rules see
	// every series from the first scrape.
	m.RateLimited.WithLabelValues("ip", "auth_failures")
	m.RateLimited.WithLabelValues("user", "sse_streams")
	m.RateLimited.WithLabelValues("process", "resumes")
	for _, v := range []string{"me", "sync", "sse", "admission_load"} {
		m.BalanceChecks.WithLabelValues(v)
	}
	for _, v := range []string{"ok", "upstream_error", "client_cancelled", "rejected"} {
		m.UsageRecords.WithLabelValues(v)
	}
	for _, v := range []string{"prompt", "completion", "cached", "cache_write", "reasoning"} {
		m.TokensProcessed.WithLabelValues(v)
	}
	for _, v := range []string{"quota.low", "quota.exhausted"} {
		m.LowBalanceAlerts.WithLabelValues(v)
	}
	for _, v := range []string{"usage.recorded", "balance.changed", "quota.updated", "quota.low", "quota.exhausted", "key.changed", "price.changed"} {
		m.EventsPublished.WithLabelValues(v)
	}
	for _, v := range []string{"no_price", "unknown_user", "invalid", "transient"} {
		m.SettlementFailures.WithLabelValues(v)
	}
	for _, v := range []string{"tokens", "cost", "overflow"} {
		m.UsageRejected.WithLabelValues(v)
	}
	reg.MustRegister(m.HTTPRequests, m.HTTPDuration, m.BalanceChecks, m.UsageRecords, m.TokensProcessed, m.CostUSD,
		m.QuotaUpdates, m.LowBalanceAlerts, m.EventsPublished, m.ConsumerLag, m.SettleDuration, m.SettlementFailures, m.UsageRejected, m.SSEClients,
		m.RateLimited)
	return m
}

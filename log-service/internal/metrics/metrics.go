// Package metrics declares log-service's Prometheus metrics on a private
// registry. The names are the contract with dashboards and alerts
// (docs/log-service.md lists them).
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lurus-switch/lurus-switch/log-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
)

// Sources of ingested rows, the "source" label.
const (
	SourceNATS = "nats" // the log.write consumer
	SourceHTTP = "http" // POST /api/v1/logs/batch
)

// Metrics are the service's collectors.
type Metrics struct {
	RowsIngested  *prometheus.CounterVec // lurus_log_rows_ingested_total{source}
	Duplicates    *prometheus.CounterVec // lurus_log_duplicates_dropped_total{source}
	BatchSize     prometheus.Histogram   // lurus_log_batch_size
	FlushDuration prometheus.Histogram   // lurus_log_flush_duration_seconds
	InsertErrors  *prometheus.CounterVec // lurus_log_insert_errors_total{source}
	ConsumerLag   prometheus.Gauge       // lurus_log_consumer_lag
	DeadLetters   prometheus.Counter     // lurus_log_dead_letters_total
	HTTPRequests  *prometheus.CounterVec // lurus_log_http_requests_total{route,method,code}
	RateLimited   *prometheus.CounterVec // lurus_log_rate_limited_total{scope,kind}
	HTTPDuration  *prometheus.HistogramVec
}

// New registers the collectors on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		RowsIngested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lurus_log_rows_ingested_total", Help: "Request log rows written to ClickHouse.",
		}, []string{"source"}),
		Duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lurus_log_duplicates_dropped_total", Help: "Records not written because their request id was already stored or repeated in the batch.",
		}, []string{"source"}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "lurus_log_batch_size", Help: "Records per flush to ClickHouse.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9), // 1 … 65536
		}),
		FlushDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "lurus_log_flush_duration_seconds", Help: "Time of one flush: duplicate check and insert.",
			Buckets: telemetry.LatencyBuckets,
		}),
		InsertErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lurus_log_insert_errors_total", Help: "Flushes that failed (the batch is retried).",
		}, []string{"source"}),
		ConsumerLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lurus_log_consumer_lag", Help: "log.write messages not yet acknowledged by the durable consumer.",
		}),
		DeadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lurus_log_dead_letters_total", Help: "log.write messages moved to the dead subject (undecodable or invalid).",
		}),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lurus_log_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lurus_log_rate_limited_total", Help: "Requests refused by an abuse cap (scope ip, kind auth_failures: 429).",
		}, []string{"scope", "kind"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "lurus_log_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: telemetry.LatencyBuckets,
		}, []string{"route"}),
	}
	m.RateLimited.WithLabelValues("ip", "auth_failures")
	reg.MustRegister(m.RateLimited, m.RowsIngested, m.Duplicates, m.BatchSize, m.FlushDuration, m.InsertErrors,
		m.ConsumerLag, m.DeadLetters, m.HTTPRequests, m.HTTPDuration)
	// Export every source from the start, so rates and alerts see zeros
	// rather than absent series.
	for _, src := range []string{SourceNATS, SourceHTTP} {
		m.RowsIngested.WithLabelValues(src)
		m.Duplicates.WithLabelValues(src)
		m.InsertErrors.WithLabelValues(src)
	}
	return m
}

// ObserveFlush records one Ingest call from source.
func (m *Metrics) ObserveFlush(source string, res biz.IngestResult, took time.Duration, err error) {
	m.FlushDuration.Observe(took.Seconds())
	m.BatchSize.Observe(float64(res.Received))
	// Inserted is only set once the block is committed, even when a later
	// step of the call failed.
	m.RowsIngested.WithLabelValues(source).Add(float64(res.Inserted))
	if err != nil {
		m.InsertErrors.WithLabelValues(source).Inc()
		return
	}
	m.Duplicates.WithLabelValues(source).Add(float64(res.Duplicates))
}

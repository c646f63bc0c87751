package server

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
)

// Metrics are provider-service's Prometheus metrics.
type Metrics struct {
	Requests        *prometheus.CounterVec   // lurus_provider_http_requests_total{route,method,code}
	Duration        *prometheus.HistogramVec // lurus_provider_http_request_duration_seconds{route,method}
	SnapshotVersion prometheus.Gauge         // lurus_provider_snapshot_version
	SnapshotCache   *prometheus.CounterVec   // lurus_provider_snapshot_cache_total{result=hit|miss}
	Probes          *prometheus.CounterVec   // lurus_provider_probe_total{result}

	mu      sync.Mutex
	version int64
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lurus_provider_http_requests_total",
			Help: "HTTP requests by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lurus_provider_http_request_duration_seconds",
			Help:    "HTTP request duration by route template and method.",
			Buckets: telemetry.LatencyBuckets,
		}, []string{"route", "method"}),
		SnapshotVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lurus_provider_snapshot_version",
			Help: "The provider snapshot version last produced or served by this instance.",
		}),
		SnapshotCache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lurus_provider_snapshot_cache_total",
			Help: "Snapshot requests answered from the Redis cache (hit) or rebuilt from PostgreSQL (miss).",
		}, []string{"result"}),
		Probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lurus_provider_probe_total",
			Help: "Upstream key probes by outcome (ok, auth_failed, bad_status, unreachable).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.Requests, m.Duration, m.SnapshotVersion, m.SnapshotCache, m.Probes)
	for _, r := range []string{"hit", "miss"} {
		m.SnapshotCache.WithLabelValues(r)
	}
	return m
}

// ObserveSnapshotCache counts one snapshot request (for biz.Snapshots).
func (m *Metrics) ObserveSnapshotCache(hit bool) {
	if hit {
		m.SnapshotCache.WithLabelValues("hit").Inc()
	} else {
		m.SnapshotCache.WithLabelValues("miss").Inc()
	}
}

// ObserveProbe counts one probe outcome (for biz.Probes).
func (m *Metrics) ObserveProbe(result string) { m.Probes.WithLabelValues(result).Inc() }

// SetSnapshotVersion records a version produced or served; the gauge
// never goes back.
func (m *Metrics) SetSnapshotVersion(v int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v > m.version {
		m.version = v
		m.SnapshotVersion.Set(float64(v))
	}
}

package service

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"

	"github.com/lurus-switch/lurus-switch/sync-service/internal/biz"
)

// Metrics are sync-service's Prometheus metrics (docs/sync-service.md).
type Metrics struct {
	MessagesOut    *prometheus.CounterVec
	SlowDrops      prometheus.Counter
	FanoutLatency  prometheus.Histogram
	AuthFailures   *prometheus.CounterVec
	Disconnects    *prometheus.CounterVec
	Resumes        *prometheus.CounterVec
	TicketsIssued  prometheus.Counter
	ClientMessages *prometheus.CounterVec
	// RateLimited counts refusals by an abuse cap:
	// lurus_sync_rate_limited_total{scope,kind}.
	RateLimited *prometheus.CounterVec
}

// Disconnect causes (label of lurus_sync_disconnects_total).
const (
	DisconnectClient   = "client"   // the client closed or went away
	DisconnectTimeout  = "timeout"  // no pong or message in time
	DisconnectSlow     = "slow"     // send queue overflowed
	DisconnectFlood    = "flood"    // too many or too large messages
	DisconnectShutdown = "shutdown" // server stopping
	DisconnectRevoked  = "revoked"  // key.changed
	DisconnectError    = "error"    // write failure or feed stopped
)

// NewMetrics registers the metrics on reg; the two gauges read sessions.
func NewMetrics(reg prometheus.Registerer, sessions *biz.SessionRegistry) *Metrics {
	m := &Metrics{
		MessagesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lurus_sync_messages_out_total", Help: "Messages written to WebSockets, by message type.",
		}, []string{"type"}),
		SlowDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lurus_sync_slow_client_drops_total", Help: "Connections closed because their send queue overflowed.",
		}),
		FanoutLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lurus_sync_fanout_latency_seconds",
			Help:    "Time from a live event's occurred_at to its being written to a socket.",
			Buckets: telemetry.LatencyBuckets,
		}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lurus_sync_auth_failures_total", Help: "Refused connection or ticket requests, by reason.",
		}, []string{"reason"}),
		Disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lurus_sync_disconnects_total", Help: "Closed WebSocket connections, by cause.",
		}, []string{"cause"}),
		Resumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lurus_sync_resumes_total", Help: "Connections with last_event_id, by result (replayed, sync_state, or failed: refused with 503 and Retry-After).",
		}, []string{"result"}),
		TicketsIssued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lurus_sync_tickets_issued_total", Help: "Tickets issued by POST /api/v1/sync/ticket.",
		}),
		ClientMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lurus_sync_messages_in_total", Help: "Messages received from clients, by type (invalid for refused ones).",
		}, []string{"type"}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lurus_sync_rate_limited_total", Help: "Refusals by an abuse cap: scope ip, kind auth_failures (429); " +
				"scope user or ip, kind ws_connections (closed with 4029); scope process, kind resumes (503).",
		}, []string{"scope", "kind"}),
	}
	reg.MustRegister(m.RateLimited, m.MessagesOut, m.SlowDrops, m.FanoutLatency, m.AuthFailures, m.Disconnects, m.Resumes, m.TicketsIssued, m.ClientMessages,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "lurus_sync_connections", Help: "Open WebSocket connections.",
		}, func() float64 { n, _ := sessions.Counts(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "lurus_sync_users_online", Help: "Distinct users with at least one open connection.",
		}, func() float64 { _, u := sessions.Counts(); return float64(u) }),
	)
	for _, t := range []string{MsgEvent, MsgPong, MsgSyncState, MsgError} {
		m.MessagesOut.WithLabelValues(t)
	}
	m.AuthFailures.WithLabelValues("INVALID_CREDENTIALS")
	for _, sk := range [][2]string{{"ip", "auth_failures"}, {"user", "ws_connections"}, {"ip", "ws_connections"}, {"process", "resumes"}} {
		m.RateLimited.WithLabelValues(sk[0], sk[1])
	}
	return m
}

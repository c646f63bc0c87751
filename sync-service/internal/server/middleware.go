package server

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lurus-switch/lurus-switch/lurus-common/edge"
)

// accessLog is the shared request middleware (lurus-common/edge: request
// id, trace context, body cap, one log line) with sync's request counter.
// The route label is the ServeMux pattern that matched, "other" for the
// catch-all.
func accessLog(maxBody int64, reg prometheus.Registerer, log *slog.Logger) edge.Access {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lurus_sync_http_requests_total", Help: "HTTP requests by route and status (101 for WebSocket upgrades).",
	}, []string{"route", "code"})
	reg.MustRegister(requests)
	return edge.Access{Log: log, MaxBodyBytes: maxBody, Observe: func(_ *http.Request, e edge.Entry) {
		route := e.Route
		if route == edge.RouteUnmatched || route == "/" {
			route = "other"
		}
		requests.WithLabelValues(route, strconv.Itoa(e.Status)).Inc()
	}}
}

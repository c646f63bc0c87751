// Package service is sync-service's transport layer: the WebSocket session
// (GET /ws/sync: authentication before the upgrade, then one reader and one
// writer goroutine per connection, fed by a natsbus.Feed subscription) and
// the ticket route (POST /api/v1/sync/ticket). It converts between the wire
// protocol in protocol.go and the rules in internal/biz.
package service

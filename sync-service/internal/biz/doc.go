// Package biz holds sync-service's rules, free of transports and drivers:
// what a ticket stands for and how redeeming it re-verifies its key (keys
// themselves are authorized by lurus-common/keyauth), which
// browser origins may connect, what a device id and an event filter may be,
// how fast a client may send, and the registry of open sessions that
// key.changed and shutdown act on. The WebSocket and HTTP code in
// internal/service calls it; internal/data implements the interfaces it
// declares.
package biz

// Package edge is the HTTP edge every Lurus service shares: token and API
// key checks, the /health and /ready answers, the net/http error writer,
// and the one request-logging middleware. It is written against net/http
// (Kratos filters and handlers are net/http; a Gin engine is an
// http.Handler; Hertz reaches it through its adaptor), so each service
// keeps only a thin adapter for its own framework.
//
// Client addresses come from package clientip and API keys are judged by
// package keyauth; edge only reads them off the request.
package edge

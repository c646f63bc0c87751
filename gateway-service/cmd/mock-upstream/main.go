// Command mock-upstream impersonates the LLM providers the gateway relays
// to (OpenAI, Azure OpenAI, Anthropic, Gemini), for end-to-end tests and
// benchmarks. See package mockupstream for the formats and the controls.
//
// Usage:
//
//	mock-upstream [-addr 127.0.0.1:18190] [-require-key KEY] [-chunks 5]
//	              [-latency-ms 0] [-gap-ms 0] [-fail-rate 0] [-no-usage]
//	              [-usage prompt=12,completion=34] [-requests-capacity 1000]
//
// The address defaults to $MOCK_UPSTREAM_ADDR, then 127.0.0.1:18190. The
// flags are the lowest control layer: a scenario (X-Mock-Scenario) and the
// X-Mock-* request headers override them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/mockupstream"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mock-upstream:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mock-upstream", flag.ContinueOnError)
	defaultAddr := os.Getenv("MOCK_UPSTREAM_ADDR")
	if defaultAddr == "" {
		defaultAddr = mockupstream.DefaultAddr
	}
	var (
		addr       = fs.String("addr", defaultAddr, "listen address (env MOCK_UPSTREAM_ADDR)")
		requireKey = fs.String("require-key", "", "accept only this upstream key")
		chunks     = fs.Int("chunks", mockupstream.DefaultChunks, "reply chunks")
		latencyMs  = fs.Int("latency-ms", 0, "delay before the first byte, ms")
		gapMs      = fs.Int("gap-ms", 0, "pause between stream chunks, ms")
		failRate   = fs.Float64("fail-rate", 0, "probability of answering 500")
		noUsage    = fs.Bool("no-usage", false, "omit usage from every reply")
		usage      = fs.String("usage", "", "fixed usage, e.g. prompt=12,completion=34,cached=5,cache_write=2,reasoning=7")
		toolCall   = fs.String("tool-call", "", "reply to every chat, Responses, Messages and Gemini request with a call of this function")
		capacity   = fs.Int("requests-capacity", mockupstream.DefaultRequestLogCapacity, "requests kept for GET /__requests")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}

	defaults := mockupstream.Settings{
		Chunks:    chunks,
		LatencyMs: latencyMs,
		GapMs:     gapMs,
		FailRate:  failRate,
		NoUsage:   noUsage,
	}
	if *requireKey != "" {
		defaults.RequireKey = requireKey
	}
	if *toolCall != "" {
		defaults.ToolCall = toolCall
	}
	if *usage != "" {
		u, err := mockupstream.ParseUsageOverride(*usage)
		if err != nil {
			return err
		}
		defaults.Usage = &u
	}
	srv, err := mockupstream.New(mockupstream.Options{Defaults: defaults, RequestLogCapacity: *capacity})
	if err != nil {
		return err
	}

	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Request contexts derive from base, so cancelling it ends the hangs
	// that would otherwise hold Shutdown until its deadline.
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	hs := &http.Server{
		Addr:              *addr,
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	logger.Info("mock-upstream listening", "addr", ln.Addr().String())

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("mock-upstream shutting down")
	cancelBase()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/lurus-switch/lurus-switch/lurus-common/authguard"
	"github.com/lurus-switch/lurus-switch/lurus-common/cleanup"
	"github.com/lurus-switch/lurus-switch/lurus-common/config"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/keyauth"
	"github.com/lurus-switch/lurus-switch/lurus-common/redisx"
	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
	"github.com/lurus-switch/lurus-switch/sync-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/sync-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/sync-service/internal/consumer"
	"github.com/lurus-switch/lurus-switch/sync-service/internal/data"
	"github.com/lurus-switch/lurus-switch/sync-service/internal/server"
	"github.com/lurus-switch/lurus-switch/sync-service/internal/service"
)

// feedStartTimeout bounds waiting for the event feed's consumer at start.
const feedStartTimeout = 15 * time.Second

// App is a wired sync-service.
type App struct {
	cfg      conf.Config
	log      *slog.Logger
	feed     *natsbus.Feed
	sessions *biz.SessionRegistry
	srv      *http.Server
	ws       *service.WS
	ln       net.Listener
}

// newApp connects the dependencies and builds every layer. Redis being
// down is not fatal (only tickets need it; /ready reports it); NATS is.
func newApp(ctx context.Context, cfg conf.Config, log *slog.Logger) (*App, func(), error) {
	secrets, err := config.Secrets("LURUS_INTERNAL_TOKEN", "LURUS_KEY_PEPPER")
	if err != nil {
		return nil, nil, err
	}
	token := secrets["LURUS_INTERNAL_TOKEN"]
	addr, err := cfg.ClientIP()
	if err != nil {
		return nil, nil, err
	}
	var closers cleanup.Stack
	fail := func(err error) (*App, func(), error) { return cleanup.Fail[App](&closers, err) }

	nc, err := nats.Connect(cfg.NATS.URL, nats.Name("sync-service"), nats.Timeout(cfg.NATS.ConnectTimeout),
		nats.MaxReconnects(-1), nats.ReconnectWait(time.Second))
	if err != nil {
		return fail(fmt.Errorf("nats %s: %w", cfg.NATS.URL, err))
	}
	closers.Push(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		return fail(fmt.Errorf("jetstream: %w", err))
	}
	names := events.NewNames(cfg.NATS.Namespace)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = natsbus.EnsureStreams(sctx, js, names, natsbus.StreamOptions{})
	cancel()
	if err != nil {
		return fail(err)
	}

	rdb, err := redisx.Open(ctx, cfg.Redis)
	if err != nil {
		log.Warn("redis unavailable at start; tickets fail until it answers", "err", err)
	}
	closers.Push(func() { _ = rdb.Close() })

	billing := data.NewBilling(cfg.Billing.URL, token, cfg.Billing.Timeout)
	keys, err := keyauth.New(keyauth.Remote{Client: internalapi.NewClient(cfg.Billing.URL, token, cfg.Billing.Timeout)},
		secrets["LURUS_KEY_PEPPER"], cfg.KeyCache())
	if err != nil {
		return fail(err)
	}
	tickets := biz.NewTickets(data.NewTicketStore(rdb, cfg.Redis.Prefix), keys, cfg.Auth.TicketTTL)
	origins := biz.NewOriginPolicy(cfg.Auth.AllowedOrigins)
	sessions := biz.NewSessionRegistry()
	reg := telemetry.NewRegistry()
	metrics := service.NewMetrics(reg, sessions)
	feed := natsbus.NewFeed(js, names, natsbus.FeedConfig{Buffer: cfg.WS.SendQueue, MaxReplays: cfg.WS.MaxResumes,
		ReplayWait: cfg.WS.ResumeWait, Logger: log})
	failures := cfg.Auth.Failures
	failures.OnRefuse = func() { metrics.RateLimited.WithLabelValues("ip", "auth_failures").Inc() }
	guard, err := authguard.New(failures)
	if err != nil {
		return fail(err)
	}

	ws := service.NewWS(service.WSDeps{
		Keys: keys, Tickets: tickets, Origins: origins, Sessions: sessions, Feed: feed, State: billing,
		Metrics: metrics, Log: log, Addr: addr, Guard: guard,
	}, cfg.WS)
	ticket := &service.TicketHandler{Keys: keys, Tickets: tickets, Origins: origins, Addr: addr, Guard: guard, Metrics: metrics, Log: log}
	srv := server.New(cfg.Server, server.Routes{WS: ws, Ticket: ticket, Ready: readyChecks(nc, feed, rdb, billing)}, reg, log)

	keySub, err := consumer.KeyChanged(nc, names, keys, sessions, log)
	if err != nil {
		return fail(err)
	}
	closers.Push(func() { _ = keySub.Unsubscribe() })

	ln, err := server.Listen(srv)
	if err != nil {
		return fail(err)
	}
	closers.Push(func() { _ = ln.Close() })
	return &App{cfg: cfg, log: log, feed: feed, sessions: sessions, srv: srv, ws: ws, ln: ln}, closers.Close, nil
}

func readyChecks(nc *nats.Conn, feed *natsbus.Feed, rdb *redis.Client, billing *data.Billing) []server.Check {
	return []server.Check{
		{Name: "nats", Ping: func(context.Context) error {
			if !nc.IsConnected() {
				return fmt.Errorf("nats %s", nc.Status())
			}
			return nil
		}},
		{Name: "feed", Ping: func(context.Context) error {
			select {
			case <-feed.Ready():
				return nil
			default:
				return server.ErrNotReady
			}
		}},
		{Name: "redis", Ping: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }},
		{Name: "billing", Ping: billing.Ping},
	}
}

// Addr is the address the app listens on.
func (a *App) Addr() net.Addr { return a.ln.Addr() }

// Run serves until ctx ends or the feed or the listener fails, then shuts
// down: stop accepting, close every session with 1001 after writing what it
// had queued, stop the feed.
func (a *App) Run(ctx context.Context) error {
	feedCtx, stopFeed := context.WithCancel(context.WithoutCancel(ctx))
	defer stopFeed()
	feedErr := make(chan error, 1)
	go func() { feedErr <- a.feed.Run(feedCtx) }()
	select {
	case <-a.feed.Ready():
	case err := <-feedErr:
		return fmt.Errorf("event feed: %w", err)
	case <-time.After(feedStartTimeout):
		return errors.New("event feed did not start")
	case <-ctx.Done():
		return nil
	}
	pingCtx, stopPings := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPings()
	go a.ws.Run(pingCtx)
	serveErr := make(chan error, 1)
	go func() { serveErr <- a.srv.Serve(a.ln) }()
	a.log.Info("sync-service listening", "addr", a.ln.Addr().String(), "namespace", a.cfg.NATS.Namespace)

	var runErr error
	feedDone := false
	select {
	case <-ctx.Done():
	case err := <-feedErr:
		feedDone = true
		runErr = fmt.Errorf("event feed stopped: %w", err)
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = err
		}
	}
	a.log.Info("sync-service shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.Server.ShutdownTimeout)
	defer cancel()
	if err := a.srv.Shutdown(sctx); err != nil {
		a.log.Warn("http shutdown", "err", err)
	}
	if err := a.sessions.Shutdown(sctx); err != nil {
		n, _ := a.sessions.Counts()
		a.log.Warn("sessions still open at shutdown deadline", "sessions", n)
	}
	stopFeed()
	if !feedDone {
		if err := <-feedErr; err != nil && runErr == nil {
			runErr = err
		}
	}
	return runErr
}

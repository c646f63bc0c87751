// Command billing-service owns money in Lurus Switch: users, API keys,
// prices, the ledger, the settlement of billing.usage, the Redis admission
// mirror and the user sync routes (HTTP and SSE).
//
//	billing-service [serve] [-config configs/config.yaml]   run the service
//	billing-service migrate [-config ...]                   apply SQL migrations
//	billing-service rebuild-cache [-config ...]             rewrite every user's Redis mirror
//
// The settlement benchmark is BenchmarkSettle in this package's tests, so
// that the binary carries no benchmark code.
//
// Like the other services, the command comes first; flags before the
// command are accepted too.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/consumer"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/data"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/metrics"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/publisher"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/server"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/service"
	"github.com/lurus-switch/lurus-switch/billing-service/migrations"
	admstore "github.com/lurus-switch/lurus-switch/lurus-common/admission/redisstore"
	"github.com/lurus-switch/lurus-switch/lurus-common/authguard"
	"github.com/lurus-switch/lurus-switch/lurus-common/cleanup"
	"github.com/lurus-switch/lurus-switch/lurus-common/connlimit"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/postgres"
	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit/redisstore"
	"github.com/lurus-switch/lurus-switch/lurus-common/redisx"
	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
)

const serviceName = "billing-service"

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "billing-service:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cmd, named := "serve", false
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args, named = args[0], args[1:], true
	}
	fs := flag.NewFlagSet(serviceName, flag.ContinueOnError)
	cfgPath := fs.String("config", "configs/config.yaml", "config file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if rest := fs.Args(); !named && len(rest) > 0 {
		cmd = rest[0]
	}
	cfg, err := conf.Load(*cfgPath)
	if err != nil {
		return err
	}
	log := telemetry.NewLogger(os.Stderr, serviceName, telemetry.ParseLevel(cfg.Log.Level))
	switch cmd {
	case "migrate":
		return migrate(ctx, cfg, log)
	case "serve", "rebuild-cache":
	default:
		return fmt.Errorf("unknown command %q (serve, migrate, rebuild-cache)", cmd)
	}
	var secrets conf.Secrets // rebuild-cache serves no route: it needs none
	if cmd == "serve" {
		if secrets, err = conf.LoadSecrets(); err != nil {
			return err
		}
	}
	app, cleanup, err := newApp(ctx, cfg, secrets, log)
	if err != nil {
		return err
	}
	defer cleanup()
	if cmd == "rebuild-cache" {
		n, err := app.Rebuild(ctx, out)
		if err == nil {
			fmt.Fprintf(out, "rebuild-cache: done, %d users\n", n)
		}
		return err
	}
	shutdownTracing, err := telemetry.SetupTracing(ctx, serviceName)
	if err != nil {
		return err
	}
	defer func() { _ = shutdownTracing(context.WithoutCancel(ctx)) }()
	return app.Serve(ctx, nil)
}

func migrate(ctx context.Context, cfg *conf.Config, log *slog.Logger) error {
	return postgres.MigrateDatabase(ctx, cfg.Database, migrations.FS, migrations.Dir, log)
}

// App is the wired service.
type App struct {
	cfg   *conf.Config
	log   *slog.Logger
	pool  *pgxpool.Pool
	rdb   *redis.Client
	nc    *nats.Conn
	js    jetstream.JetStream
	names events.Names
	Store *data.Store
	Adm   *admstore.Store
	// Rates reads the gateways' rate-limit counters (same Redis and
	// prefix as the gateways) for /me.
	Rates    *redisstore.Store
	Prices   *biz.PriceBook
	Pub      *publisher.Publisher
	Metrics  *metrics.Metrics
	Registry *prometheus.Registry
	Feed     *natsbus.Feed
	// Accounts changes accounts (admin changes, top-ups, quota periods).
	Accounts *biz.Accounts
	// Settlement settles billing.usage batches; Handler is its consumer.
	Settlement *biz.Settlement
	Handler    *consumer.Handler
	// Keys is the key store the user-key routes read (the Store; tests
	// wrap it to count lookups).
	Keys service.Keys

	// BeforeAck is passed to the settlement consumer (crash tests).
	BeforeAck func(natsbus.Delivery) bool

	secrets conf.Secrets
}

// newApp connects to PostgreSQL, Redis and NATS, makes sure the streams
// exist and wires every layer. It starts nothing; Serve does.
func newApp(ctx context.Context, cfg *conf.Config, secrets conf.Secrets, log *slog.Logger) (*App, func(), error) {
	var closers cleanup.Stack
	fail := func(err error) (*App, func(), error) { return cleanup.Fail[App](&closers, err) }

	pool, err := postgres.Open(ctx, cfg.Database)
	if err != nil {
		return fail(err)
	}
	closers.Push(pool.Close)
	rdb, err := redisx.Open(ctx, cfg.Redis)
	closers.Push(func() { _ = rdb.Close() })
	if err != nil {
		return fail(err)
	}
	nc, err := nats.Connect(cfg.NATS.URL, nats.Name(serviceName), nats.MaxReconnects(-1), nats.Timeout(5*time.Second))
	if err != nil {
		return fail(fmt.Errorf("nats: %w", err))
	}
	closers.Push(func() { _ = nc.Drain() })
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		return fail(err)
	}
	names := events.NewNames(cfg.NATS.Namespace)
	if err := natsbus.EnsureStreams(ctx, js, names, natsbus.StreamOptions{}); err != nil {
		return fail(err)
	}

	reg := telemetry.NewRegistry()
	m := metrics.New(reg)
	store := data.NewStore(pool, cfg.Rules())
	adm := admstore.New(rdb, cfg.Redis.Prefix)
	rates, err := redisstore.New(rdb, cfg.Redis.Prefix, redisstore.Options{})
	if err != nil {
		return fail(err)
	}
	prices := biz.NewPriceBook(store, cfg.Billing.Pricing())
	pub := publisher.New(nc, js, names, adm, store, m, log)
	feed := natsbus.NewFeed(js, names, natsbus.FeedConfig{Buffer: cfg.SSE.Buffer, MaxReplays: cfg.SSE.MaxResumes,
		ReplayWait: cfg.SSE.ResumeWait, Logger: log})
	settlement := &biz.Settlement{Repo: store.Settlements(), Rules: cfg.Rules(), Now: time.Now}
	accounts := &biz.Accounts{Repo: store.Accounts(), Rules: cfg.Rules(), Now: time.Now}
	app := &App{cfg: cfg, log: log, pool: pool, rdb: rdb, nc: nc, js: js, names: names, Store: store, Adm: adm, Rates: rates,
		Prices: prices, Pub: pub, Metrics: m, Registry: reg, Feed: feed, Accounts: accounts, Settlement: settlement, Keys: store}
	app.Handler = newHandlerFor(app)
	app.secrets = secrets
	return app, closers.Close, nil
}

// newHandlerFor is the settlement handler over a's settlement, prices and
// publisher.
func newHandlerFor(a *App) *consumer.Handler {
	return consumer.NewHandler(a.Settlement, a.Prices, a.Pub, a.Metrics, a.log)
}

// Rebuild rewrites every user's admission mirror from PostgreSQL in
// batches, printing a progress line per batch, and returns the count.
func (a *App) Rebuild(ctx context.Context, progress io.Writer) (int, error) {
	total, after := 0, ""
	for {
		ms, err := a.Store.Mirrors(ctx, after, a.cfg.Billing.RebuildBatch)
		if err != nil {
			return total, err
		}
		if len(ms) == 0 {
			return total, nil
		}
		if err := a.Pub.ApplyMirrors(ctx, ms); err != nil {
			return total, err
		}
		total += len(ms)
		after = ms[len(ms)-1].UserID
		if progress != nil {
			fmt.Fprintf(progress, "rebuild-cache: %d users mirrored (last %s)\n", total, after)
		}
	}
}

// Serve runs the service until ctx ends, then shuts down gracefully: SSE
// streams end, the HTTP server drains, the consumer finishes its batch,
// background loops stop. ready, when set, receives the bound address.
func (a *App) Serve(ctx context.Context, ready chan<- string) error {
	if err := a.Prices.Refresh(ctx); err != nil {
		return fmt.Errorf("load prices: %w", err)
	}
	if a.cfg.Billing.RebuildOnStart {
		n, err := a.Rebuild(ctx, nil)
		if err != nil {
			return fmt.Errorf("rebuild admission mirror: %w", err)
		}
		a.log.Info("admission mirror rebuilt", "users", n)
	}
	runner, err := consumer.NewRunner(ctx, a.js, consumer.Config{Names: a.names, BatchSize: a.cfg.Consumer.BatchSize,
		Linger: a.cfg.Consumer.Linger, AckWait: a.cfg.Consumer.AckWait, LagInterval: a.cfg.Consumer.LagInterval,
		Backoff: backoff(a.cfg.Consumer), Workers: a.cfg.Consumer.Workers, BeforeAck: a.BeforeAck}, a.Handler, a.Metrics, a.log)
	if err != nil {
		return err
	}
	clientIP, err := a.cfg.Server.ClientIP()
	if err != nil {
		return err
	}
	failures := a.cfg.Auth.Failures
	failures.OnRefuse = func() { a.Metrics.RateLimited.WithLabelValues("ip", "auth_failures").Inc() }
	guard, err := authguard.New(failures)
	if err != nil {
		return err
	}
	stopSSE := make(chan struct{})
	svc := service.New(service.Deps{Users: a.Store, Money: a.Store, Accounts: a.Accounts, Keys: a.Keys, Prices: a.Store, Reports: a.Store,
		Mirrors: a.Store, Prop: a.Pub, Admission: a.Adm, RateUsage: a.Rates, Feed: a.Feed, PriceBook: a.Prices, Metrics: a.Metrics, Log: a.log},
		service.Options{AdminToken: a.secrets.AdminToken, InternalToken: a.secrets.InternalToken, KeyPepper: a.secrets.KeyPepper,
			Limits: a.cfg.Limits.Rules(), ClientIP: clientIP, KeepAlive: a.cfg.SSE.KeepAlive, Stop: stopSSE,
			Guard: guard, Streams: connlimit.New(a.cfg.SSE.MaxPerUser)})
	engine := server.NewEngine(svc, server.Options{MaxBodyBytes: a.cfg.Server.MaxBodyBytes, Registry: a.Registry,
		Metrics: a.Metrics, Log: a.log, Checks: []server.Check{
			{Name: "postgres", Ping: a.Store.Ping},
			{Name: "redis", Ping: func(ctx context.Context) error { return a.rdb.Ping(ctx).Err() }},
			{Name: "nats", Ping: func(context.Context) error {
				if !a.nc.IsConnected() {
					return errors.New("not connected")
				}
				return nil
			}},
		}})
	srv, err := server.Listen(a.cfg.Server.Addr, engine, a.cfg.Server.ReadHeaderTimeout)
	if err != nil {
		return err
	}

	// Background work runs on bg, cancelled only after HTTP has drained.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	goBG := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(bg); err != nil && bg.Err() == nil {
				a.log.Error("background task stopped", "task", name, "err", err)
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	goBG("feed", a.Feed.Run)
	select {
	case <-a.Feed.Ready():
	case err := <-errc:
		return err
	}
	goBG("consumer", runner.Run)
	goBG("outbox-sweeper", func(ctx context.Context) error {
		a.Pub.Sweep(ctx, a.cfg.Billing.OutboxSweepInterval, a.cfg.Billing.OutboxMinAge)
		return nil
	})
	goBG("period-roller", a.rollPeriods)
	goBG("price-refresher", a.refreshPrices)
	go func() {
		if err := srv.Serve(); err != nil {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	a.log.Info("billing-service listening", "addr", srv.Addr(), "nats_namespace", a.cfg.NATS.Namespace, "redis_prefix", a.cfg.Redis.Prefix)
	if ready != nil {
		ready <- srv.Addr()
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	a.log.Info("shutting down")
	close(stopSSE)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Server.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		a.log.Warn("http shutdown", "err", err)
	}
	stopBG()
	wg.Wait()
	a.log.Info("stopped")
	return runErr
}

func backoff(c conf.Consumer) []time.Duration {
	var out []time.Duration
	for d := c.RetryBackoff; d < c.MaxRetryDelay; d *= 2 {
		out = append(out, d)
	}
	return append(out, c.MaxRetryDelay)
}

// rollPeriods resets quota periods that rolled over, every interval.
func (a *App) rollPeriods(ctx context.Context) error {
	t := time.NewTicker(a.cfg.Billing.PeriodCheckInterval)
	defer t.Stop()
	for {
		eff, err := a.Accounts.RollPeriods(ctx, 1000)
		if err == nil {
			err = a.Pub.Propagate(ctx, eff)
		}
		if err != nil && ctx.Err() == nil {
			a.log.Warn("quota period reset failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// refreshPrices reloads the price table on price.changed (from any
// replica) and every PriceRefreshInterval.
func (a *App) refreshPrices(ctx context.Context) error {
	notify := make(chan *nats.Msg, 1)
	sub, err := a.nc.ChanSubscribe(a.names.Subject(events.SubjectPriceChanged), notify)
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	t := time.NewTicker(a.cfg.Billing.PriceRefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-notify:
		case <-t.C:
		}
		if err := a.Prices.Refresh(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("price table reload failed", "err", err)
		}
	}
}

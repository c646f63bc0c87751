// Command gateway-service is the Lurus relay: OpenAI, Anthropic and Gemini
// APIs in, any configured provider out, with key checks, admission,
// failover and metering (see docs/gateway-service.md).
//
// Usage:
//
//	gateway-service [serve] [-config configs/config.yaml]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/gateway-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/gateway-service/internal/consumer"
	"github.com/lurus-switch/lurus-switch/gateway-service/internal/data"
	"github.com/lurus-switch/lurus-switch/gateway-service/internal/metrics"
	"github.com/lurus-switch/lurus-switch/gateway-service/internal/publisher"
	srv "github.com/lurus-switch/lurus-switch/gateway-service/internal/server"
	"github.com/lurus-switch/lurus-switch/gateway-service/internal/service"
	admstore "github.com/lurus-switch/lurus-switch/lurus-common/admission/redisstore"
	"github.com/lurus-switch/lurus-switch/lurus-common/authguard"
	"github.com/lurus-switch/lurus-switch/lurus-common/cleanup"
	"github.com/lurus-switch/lurus-switch/lurus-common/clientip"
	"github.com/lurus-switch/lurus-switch/lurus-common/coalesce"
	"github.com/lurus-switch/lurus-switch/lurus-common/config"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/keyauth"
	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit/redisstore"
	"github.com/lurus-switch/lurus-switch/lurus-common/redisx"
	"github.com/lurus-switch/lurus-switch/lurus-common/requestid"
	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gateway-service:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("gateway-service "+cmd, flag.ContinueOnError)
	path := fs.String("config", "configs/config.yaml", "config file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch cmd {
	case "serve":
	default:
		return fmt.Errorf("unknown command %q (commands: serve)", cmd)
	}
	cfg, err := conf.Load(*path)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app, cleanup, err := newApp(ctx, cfg)
	if err != nil {
		return err
	}
	defer cleanup()
	return app.Run(ctx)
}

// App is the wired gateway.
type App struct {
	cfg       *conf.Config
	log       *slog.Logger
	hertz     *server.Hertz
	relay     *service.Relay
	core      *biz.Relay // the use case behind relay
	publisher *publisher.Publisher
	leases    *biz.Leases
	changes   *consumer.Changes
	bgCancel  context.CancelFunc
	bgCtx     context.Context
	addr      net.Addr
}

// newApp wires every layer by hand. The gateway starts even when
// provider-service, billing-service, Redis or NATS are down: requests then
// get 503s (or events go to the outbox) until they answer.
func newApp(ctx context.Context, cfg *conf.Config) (*App, func(), error) {
	var out io.Writer = os.Stdout
	var logBuf *telemetry.BufferedWriter
	if cfg.Log.FlushInterval > 0 {
		logBuf = telemetry.NewBufferedWriter(os.Stdout, 64<<10, cfg.Log.FlushInterval)
		out = logBuf
	}
	log := telemetry.NewLogger(out, "gateway-service", telemetry.ParseLevel(cfg.Log.Level))
	config.ApplyGCPercent(cfg.Runtime.GCPercent)
	var cleanups cleanup.Stack
	if logBuf != nil {
		cleanups.Push(func() { _ = logBuf.Close() })
	}
	fail := func(err error) (*App, func(), error) { return cleanup.Fail[App](&cleanups, err) }

	secrets, err := conf.LoadSecrets()
	if err != nil {
		return fail(err)
	}
	shutdownTracing, err := telemetry.SetupTracing(ctx, "gateway-service")
	if err != nil {
		return fail(err)
	}
	cleanups.Push(func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdownTracing(c)
	})

	rdb, err := redisx.Open(ctx, cfg.Redis)
	if err != nil {
		log.Warn("redis not answering at start; admission fails closed until it does", "err", err)
	}
	cleanups.Push(func() { _ = rdb.Close() })

	names := events.NewNames(cfg.NATS.Namespace)
	var js jetstream.JetStream
	nc, err := nats.Connect(cfg.NATS.URL, nats.Name("gateway-service"), nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true), nats.ReconnectWait(500*time.Millisecond),
		nats.ConnectHandler(func(c *nats.Conn) { ensureStreams(c, names, log) }),
		nats.ReconnectHandler(func(c *nats.Conn) { ensureStreams(c, names, log) }))
	if err != nil {
		return fail(fmt.Errorf("nats: %w", err))
	}
	cleanups.Push(nc.Close)
	if js, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(cfg.Events.MaxInFlight*2)); err != nil {
		return fail(err)
	}
	if nc.IsConnected() {
		ensureStreams(nc, names, log)
	} else {
		log.Warn("nats not answering at start; events go to the outbox until it does")
	}

	reg := telemetry.NewRegistry()
	m := metrics.New(reg)
	billingC := data.NewInternalClient(cfg.Billing.URL, secrets.InternalToken, cfg.Billing.Timeout)
	providerC := data.NewInternalClient(cfg.Provider.URL, secrets.InternalToken, cfg.Provider.Timeout)
	billing := data.NewBilling(billingC)

	breakers := biz.NewBreakers(biz.BreakerConfig{
		ConsecutiveFailures: cfg.Breaker.ConsecutiveFailures, FailureRate: cfg.Breaker.FailureRate,
		MinRequests: cfg.Breaker.MinRequests, Window: cfg.Breaker.Window, Cooldown: cfg.Breaker.Cooldown,
		OnChange: func(provider, key string, from, to biz.BreakerState) {
			log.Warn("circuit breaker state change", "provider", provider, "provider_key", key, "from", from.String(), "to", to.String())
			m.Breaker(provider, key, to)
		},
	})
	router := biz.NewRouter(biz.RouterConfig{Defaults: biz.Timeouts{
		Connect: cfg.Upstream.ConnectTimeout, FirstByte: cfg.Upstream.FirstByteTimeout,
		Idle: cfg.Upstream.IdleTimeout, Total: cfg.Upstream.TotalTimeout}}, breakers)
	prices := biz.NewPriceBook(biz.EstimateConfig{BytesPerToken: cfg.Estimate.BytesPerToken,
		DefaultMaxOutput: cfg.Estimate.DefaultMaxOutputTokens, ModelMaxOutput: cfg.Estimate.ModelMaxOutputTokens})
	keys, err := keyauth.New(keyauth.Remote{Client: billingC}, secrets.KeyPepper, cfg.Auth.KeyCache())
	if err != nil {
		return fail(err)
	}
	failures := cfg.Auth.Failures
	failures.OnRefuse = func() { m.RateLimited("ip", "auth_failures") }
	guard, err := authguard.New(failures)
	if err != nil {
		return fail(err)
	}
	tok := data.NewTokenizer() // loads on first need: see data.Tokenizer

	outbox, err := publisher.OpenOutbox(cfg.Events.OutboxDir, strings.EqualFold(cfg.Events.OutboxSync, "always"))
	if err != nil {
		return fail(err)
	}
	cleanups.Push(func() { _ = outbox.Close() })
	pub := publisher.New(publisher.Config{QueueSize: cfg.Events.QueueSize, PublishTimeout: cfg.Events.PublishTimeout,
		MaxInFlight: cfg.Events.MaxInFlight, Linger: cfg.Events.Linger,
		BatchMaxEvents: cfg.Events.BatchMaxEvents, BatchMaxBytes: cfg.Events.BatchMaxBytes}, nc, js, names, outbox, log, m)

	admit := data.NewAdmission(admstore.New(rdb, cfg.Redis.Prefix), cfg.Admission.Senders, cfg.Admission.MaxBatch)
	cleanups.Push(admit.Close)
	leases := biz.NewLeases(biz.LeaseConfig{Factor: cfg.Admission.LeaseFactor, Window: cfg.Admission.LeaseWindow,
		Prefetch: *cfg.Admission.LeasePrefetch, MaxShare: cfg.Admission.LeaseMaxShare,
		TTL: cfg.Admission.ReservationTTL, Idle: cfg.Admission.LeaseIdle, Check: cfg.Admission.LeaseCheck, Instance: requestid.New(),
		FailOpenMaxMicros: cfg.Admission.FailOpenMaxMicros, Observe: m.Admission}, admit, billing)
	store, err := redisstore.New(rdb, cfg.Redis.Prefix, redisstore.Options{})
	if err != nil {
		return fail(err)
	}
	// Rate-limit calls of concurrent requests share pipelined round trips,
	// sized like the admission coalescer's.
	limits := redisstore.NewCoalescer(store, coalesce.Options{Senders: cfg.Admission.Senders, MaxBatch: cfg.Admission.MaxBatch})
	cleanups.Push(limits.Close)
	relay := &biz.Relay{
		Cfg: biz.RelayConfig{MaxAttempts: cfg.Relay.MaxAttempts, DrainTimeout: cfg.Relay.DrainTimeout,
			MaxResponseBytes: cfg.Upstream.MaxResponseBytes, MaxChoices: cfg.Estimate.MaxChoices},
		Keys: keys, Guard: guard, Router: router, Prices: prices,
		Leases:     leases,
		Upstream:   data.NewUpstream(data.UpstreamConfig{MaxConnsPerHost: cfg.Upstream.MaxConnsPerHost, AllowPrivateNetwork: cfg.Upstream.AllowPrivateNetwork}),
		Budget:     biz.NewRetryBudget(cfg.Relay.RetryRatio, cfg.Relay.RetryBurst),
		Tokens:     tok,
		Events:     &service.LogSink{Next: pub, Log: log},
		EventsLost: pub.Losing,
		Metrics:    m,
		Tracer:     otel.Tracer("gateway-service"),
		Tracing:    telemetry.TracingEnabled(),
		Now:        time.Now,
		Limits:     limits,
		// Rate limits follow the admission setting when Redis is down.
		LimitCfg: biz.LimitConfig{FailOpen: cfg.Admission.FailOpenMaxMicros > 0},
		LimitErrors: func(op string, err error) {
			log.Warn("rate limit accounting failed; slots expire on their own", "op", op, "err", err)
		},
	}
	clientIP, err := clientip.Parse(cfg.Server.TrustedProxies)
	if err != nil {
		return fail(err)
	}
	svc := service.NewRelay(service.Config{MaxBodyBytes: int(cfg.Server.MaxBodyBytes), ClientIP: clientIP}, relay)

	changes := &consumer.Changes{NC: nc, Names: names, Router: router, Prices: prices, Keys: keys, Leases: leases,
		Snapshots: data.NewProviders(providerC), PriceSrc: billing, Providers: cfg.Provider.Refresh,
		PriceEvery: cfg.Billing.Refresh, Timeout: cfg.Provider.Timeout, Log: log}

	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		return fail(err)
	}
	ready := []srv.ReadyCheck{
		{Name: "redis", Ping: func(c context.Context) error { return rdb.Ping(c).Err() }},
		{Name: "nats", Ping: func(context.Context) error {
			if !nc.IsConnected() {
				return errors.New("not connected")
			}
			return nil
		}},
		{Name: "provider-snapshot", Ping: func(context.Context) error {
			if s, _ := changes.Ready(); !s {
				return errors.New("not loaded")
			}
			return nil
		}},
		{Name: "prices", Ping: func(context.Context) error {
			if _, p := changes.Ready(); !p {
				return errors.New("not loaded")
			}
			return nil
		}},
	}
	h := srv.New(srv.Config{Listener: ln, MaxBodyBytes: int(cfg.Server.MaxBodyBytes), ReadTimeout: cfg.Server.ReadTimeout,
		IdleTimeout: cfg.Server.IdleTimeout, ShutdownTimeout: cfg.Server.ShutdownTimeout, Log: log}, svc, ready, telemetry.MetricsHandler(reg))
	bgCtx, bgCancel := context.WithCancel(context.Background())
	cleanups.Push(bgCancel)
	return &App{cfg: cfg, log: log, hertz: h, relay: svc, core: relay, publisher: pub, leases: leases, changes: changes,
		bgCtx: bgCtx, bgCancel: bgCancel, addr: ln.Addr()}, cleanups.Close, nil
}

// Run serves until ctx ends, then shuts down in order: stop accepting,
// finish in-flight requests, drain the event queue (to NATS or the
// outbox).
func (a *App) Run(ctx context.Context) error {
	pubCtx, stopPub := context.WithCancel(context.Background())
	defer stopPub()
	go a.publisher.Run(pubCtx)
	if err := telemetry.ServePprof(a.bgCtx, a.cfg.Server.PprofAddr, a.log); err != nil {
		return err
	}
	if err := a.changes.Start(a.bgCtx); err != nil {
		return err
	}
	defer a.changes.Stop()
	go a.leases.Run(a.bgCtx, min(time.Second, a.cfg.Admission.LeaseIdle/2, a.cfg.Admission.LeaseCheck))
	errc := make(chan error, 1)
	go func() { errc <- a.hertz.Run() }()
	a.log.Info("gateway-service listening", "addr", a.addr.String(), "namespace", a.cfg.NATS.Namespace)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.log.Info("shutting down: draining requests and events")
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.Server.ShutdownTimeout)
	defer cancel()
	// Shutdown closes the listener at once but then waits for idle
	// keep-alive connections too; only in-flight requests matter here.
	// relay.Wait turns away what still arrives meanwhile (503, connection
	// closed), so it need not wait for the listener to close first.
	go func() {
		if err := a.hertz.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			a.log.Warn("http shutdown", "err", err)
		}
	}()
	if err := a.relay.Wait(sctx); err != nil {
		a.log.Warn("in-flight requests did not finish", "err", err)
	}
	a.leases.ReturnAll(sctx)
	a.bgCancel()
	stopPub()
	if err := a.publisher.Wait(sctx); err != nil {
		a.log.Warn("event drain", "err", err)
	}
	a.log.Info("stopped")
	return nil
}

func ensureStreams(nc *nats.Conn, names events.Names, log *slog.Logger) {
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := natsbus.EnsureStreams(ctx, js, names, natsbus.StreamOptions{}); err != nil {
		log.Warn("ensuring streams failed", "err", err)
	}
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/consumer"
	"github.com/lurus-switch/lurus-switch/billing-service/migrations"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/postgres"
	"github.com/lurus-switch/lurus-switch/lurus-common/pricing"
	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
)

// Flags of BenchmarkSettle (go test passes flags it does not know to the
// test binary): `go test -run '^$' -bench Settle -benchtime 1x
// ./cmd/billing-service -settle-n 50000`.
var (
	settleN       = flag.Int("settle-n", 50000, "BenchmarkSettle: billing.usage events to settle")
	settleUsers   = flag.Int("settle-users", 1000, "BenchmarkSettle: users in the mix")
	settleBatch   = flag.Int("settle-batch", 500, "BenchmarkSettle: consumer batch size")
	settleWorkers = flag.Int("settle-workers", 1, "BenchmarkSettle: batches settled at once (consumer.workers)")
)

// BenchmarkSettle measures settlement throughput once per run (b.N is
// ignored; use -benchtime 1x) and reports it as settled/s and as the ratio
// to the baseline. It lives in a test file so that the service binary
// carries no benchmark code, and uses newApp so that it measures the
// service as wired. The servers are LURUS_PG_URL, LURUS_REDIS_ADDR and
// LURUS_NATS_URL (dev.env).
func BenchmarkSettle(b *testing.B) {
	r, err := benchSettle(b.Context(), settleOptions{n: *settleN, users: *settleUsers, batch: *settleBatch, workers: *settleWorkers,
		pgURL:     envOr("LURUS_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		redisAddr: envOr("LURUS_REDIS_ADDR", "127.0.0.1:6379"),
		natsURL:   envOr("LURUS_NATS_URL", "nats://127.0.0.1:4222")}, os.Stdout)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(r.settled, "settled/s")
	b.ReportMetric(r.baseline, "baseline/s")
	b.ReportMetric(r.settled/r.baseline, "ratio")
}

// settleOptions are BenchmarkSettle's parameters.
type settleOptions struct {
	n, users, batch, workers  int
	pgURL, redisAddr, natsURL string // pgURL: admin URL; a temporary database is created
}

// settleRates are what a run measured, in events per second.
type settleRates struct{ baseline, settled float64 }

// benchSettle measures settlement throughput end to end on the local
// servers, in a throw-away database, Redis prefix and NATS namespace:
// N billing.usage events for a mix of users and models are published,
// then (1) a baseline durable consumer on the same stream acks them with a
// no-op handler (the cost of JetStream delivery and AckSync alone), and
// (2) the real settlement consumer settles them (transaction, mirror,
// events, AckSync). Each is timed from start until its lag is 0; the
// result is given as events/s and as the ratio of (2) to (1).
func benchSettle(ctx context.Context, o settleOptions, out io.Writer) (settleRates, error) {
	log := telemetry.NewLogger(os.Stderr, serviceName, slog.LevelError)
	suffix := fmt.Sprintf("%x", rand.Uint64())
	dbName := "lurus_bench_" + suffix

	admin, err := pgx.Connect(ctx, o.pgURL)
	if err != nil {
		return settleRates{}, err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+dbName); err != nil {
		return settleRates{}, err
	}
	defer func() {
		_, _ = admin.Exec(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)")
	}()
	u, err := url.Parse(o.pgURL)
	if err != nil {
		return settleRates{}, err
	}
	u.Path = "/" + dbName

	cfg := &conf.Config{}
	cfg.SetDefaults()
	cfg.Database.URL, cfg.Database.MaxConns = u.String(), 8
	cfg.Redis.Addr, cfg.Redis.Prefix = o.redisAddr, "bench:"+suffix+":"
	cfg.NATS.URL, cfg.NATS.Namespace = o.natsURL, "bench"+suffix
	cfg.Consumer.BatchSize = o.batch
	app, cleanup, err := newApp(ctx, cfg, conf.Secrets{}, log)
	if err != nil {
		return settleRates{}, err
	}
	defer cleanup()
	defer func() {
		bg := context.WithoutCancel(ctx)
		_ = natsbus.DeleteStreams(bg, app.js, app.names)
		if keys, err := app.rdb.Keys(bg, cfg.Redis.Prefix+"*").Result(); err == nil && len(keys) > 0 {
			_ = app.rdb.Del(bg, keys...).Err()
		}
	}()
	if _, err := postgres.Migrate(ctx, app.pool, migrations.FS, migrations.Dir, nil); err != nil {
		return settleRates{}, err
	}

	fmt.Fprintf(out, "bench-settle: seeding %d users, publishing %d billing.usage events\n", o.users, o.n)
	ids, keys, err := seedBench(ctx, app, o.users)
	if err != nil {
		return settleRates{}, err
	}
	if err := publishBench(ctx, app, ids, keys, o.n); err != nil {
		return settleRates{}, err
	}

	stream := app.names.Stream(events.StreamBilling)
	noop, err := natsbus.NewConsumer(ctx, app.js, natsbus.ConsumerConfig{Stream: stream, Durable: "bench-noop",
		FilterSubject: app.names.Subject(events.SubjectBillingUsage), DeadSubject: app.names.DeadSubject(events.StreamBilling),
		BatchSize: o.batch, Logger: log})
	if err != nil {
		return settleRates{}, err
	}
	base, err := timeUntilDrained(ctx, noop.Lag, func(c context.Context) error {
		return noop.RunBatch(c, func(context.Context, []natsbus.Delivery) []error { return nil })
	})
	if err != nil {
		return settleRates{}, err
	}
	runner, err := consumer.NewRunner(ctx, app.js, consumer.Config{Names: app.names, BatchSize: o.batch,
		Linger: cfg.Consumer.Linger, AckWait: cfg.Consumer.AckWait, Backoff: backoff(cfg.Consumer), Workers: o.workers},
		app.Handler, app.Metrics, log)
	if err != nil {
		return settleRates{}, err
	}
	settle, err := timeUntilDrained(ctx, runner.Lag, runner.Run)
	if err != nil {
		return settleRates{}, err
	}

	var records, debits int64
	if err := app.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM usage_records), (SELECT count(*) FROM ledger_entries WHERE kind = 'usage')`).Scan(&records, &debits); err != nil {
		return settleRates{}, err
	}
	bad, err := app.Store.LedgerMismatch(ctx)
	if err != nil {
		return settleRates{}, err
	}
	rate := func(d time.Duration) float64 { return float64(o.n) / d.Seconds() }
	fmt.Fprintf(out, "baseline (no-op handler, same runner, same events): %d events in %v = %.0f events/s\n", o.n, base.Round(time.Millisecond), rate(base))
	fmt.Fprintf(out, "settlement (tx + Redis mirror + user events + AckSync): %d events in %v = %.0f events/s\n", o.n, settle.Round(time.Millisecond), rate(settle))
	fmt.Fprintf(out, "ratio settlement/baseline = %.2f\n", rate(settle)/rate(base))
	fmt.Fprintf(out, "check: %d usage records, %d debits, %d users with balance != sum(ledger)\n", records, debits, len(bad))
	if records != int64(o.n) || len(bad) != 0 {
		return settleRates{}, fmt.Errorf("bench-settle: settlement incomplete or ledger unbalanced")
	}
	return settleRates{baseline: rate(base), settled: rate(settle)}, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// seedBench creates users (each topped up, most with a token quota) with
// one key each, and prices for the three model families.
func seedBench(ctx context.Context, app *App, n int) (ids, keys []string, err error) {
	for _, p := range []pricing.Price{
		{ModelPattern: "gpt-*", InputMicrosPerMTok: 2_500_000, OutputMicrosPerMTok: 10_000_000, CachedInputMicrosPerMTok: 1_250_000},
		{ModelPattern: "claude-*", InputMicrosPerMTok: 3_000_000, OutputMicrosPerMTok: 15_000_000, CachedInputMicrosPerMTok: 300_000, CacheWriteMicrosPerMTok: 3_750_000},
		{ModelPattern: "gemini-*", InputMicrosPerMTok: 1_250_000, OutputMicrosPerMTok: 5_000_000},
	} {
		p.ID = biz.NewID(biz.PrefixPrice)
		if _, err := app.Store.CreatePrice(ctx, p); err != nil {
			return nil, nil, err
		}
	}
	now := time.Now().UTC()
	for i := 0; i < n; i++ {
		u := &biz.User{ID: biz.NewID(biz.PrefixUser), Name: fmt.Sprintf("bench-%d", i), Status: biz.StatusActive,
			Group: "default", PeriodStart: biz.PeriodStart(now), Version: 1, CreatedAt: now, UpdatedAt: now,
			LowBalanceThresholdMicros: 1_000_000}
		if i%4 != 0 {
			u.QuotaLimitTokens = 50_000_000
		}
		if err := app.Store.CreateUser(ctx, u); err != nil {
			return nil, nil, err
		}
		if _, err := app.Store.Post(ctx, biz.PostRequest{UserID: u.ID, Kind: biz.KindTopup, AmountMicros: 100_000_000,
			IdemKey: "seed-" + u.ID, RequestHash: "seed"}); err != nil {
			return nil, nil, err
		}
		k := &biz.Key{ID: biz.NewID(biz.PrefixKey), UserID: u.ID, Prefix: "sk-lurus-bench", Status: biz.KeyActive,
			Models: []string{}, AllowedIPs: []string{}, CreatedAt: now, UpdatedAt: now}
		if err := app.Store.CreateKey(ctx, k, "bench-"+k.ID); err != nil {
			return nil, nil, err
		}
		ids, keys = append(ids, u.ID), append(keys, k.ID)
	}
	if err := app.Prices.Refresh(ctx); err != nil {
		return nil, nil, err
	}
	_, err = app.Rebuild(ctx, nil)
	return ids, keys, err
}

// publishBench publishes n usages: users drawn with a skew (a few heavy
// users, a long tail), models from three families, 2 % refused requests.
func publishBench(ctx context.Context, app *App, ids, keys []string, n int) error {
	models := []string{"gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "gemini-2.5-flash"}
	zipf := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.1, 1, uint64(len(ids)-1))
	subject := app.names.Subject(events.SubjectBillingUsage)
	var futs []jetstream.PubAckFuture
	now := time.Now().UTC()
	for i := 0; i < n; i++ {
		ui := int(zipf.Uint64())
		prompt := int64(100 + rand.IntN(4000))
		u := events.Usage{RequestID: fmt.Sprintf("bench-%08d", i), UserID: ids[ui], KeyID: keys[ui],
			Model: models[i%len(models)], APIFormat: "openai", Endpoint: "/v1/chat/completions",
			PromptTokens: prompt, CompletionTokens: int64(20 + rand.IntN(1000)), CachedTokens: prompt / 10,
			UsageSource: events.UsageSourceUpstream, Status: events.StatusOK, ReservationID: fmt.Sprintf("bench-%08d", i),
			StartedAt: now, FinishedAt: now}
		if i%50 == 0 {
			u.Status, u.PromptTokens, u.CompletionTokens, u.CachedTokens = events.StatusRejected, 0, 0, 0
		}
		env, err := events.NewEnvelope(u.RequestID, events.TypeBillingUsage, u.UserID, now, u)
		if err != nil {
			return err
		}
		msg, err := natsbus.NewMsg(ctx, subject, env)
		if err != nil {
			return err
		}
		f, err := app.js.PublishMsgAsync(msg)
		if err != nil {
			return err
		}
		futs = append(futs, f)
	}
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// timeUntilDrained runs run until lag reports 0 and returns the elapsed
// time.
func timeUntilDrained(ctx context.Context, lag func(context.Context) (uint64, error), run func(context.Context) error) (time.Duration, error) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- run(rctx) }()
	for {
		select {
		case err := <-errc:
			return 0, fmt.Errorf("consumer stopped: %v", err)
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if l, err := lag(ctx); err == nil && l == 0 {
			d := time.Since(start)
			cancel()
			<-errc
			return d, nil
		}
	}
}

// Package consumer is the durable consumer of log.write (stream LURUS_LOGS,
// durable log-service): it decodes each event, writes batches through the
// biz.Ingester and acknowledges a message only after its batch is
// committed. It implements Kratos' transport.Server, so the app starts it
// and drains it on shutdown like the HTTP server.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/lurus-switch/lurus-switch/log-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/log-service/internal/metrics"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
)

// Config tunes the consumer (conf.Consumer plus the namespace and a test
// hook).
type Config struct {
	Names         events.Names
	BatchSize     int
	Linger        time.Duration
	Workers       int
	AckWait       time.Duration
	FlushTimeout  time.Duration
	MaxAckPending int
	// AckMode is how committed messages are acknowledged; AckAsync is safe
	// because a redelivery is dropped as a duplicate.
	AckMode natsbus.AckMode
	// AckConcurrency is how many AckSync round trips run at once while a
	// flushed batch is acknowledged (AckSync only).
	AckConcurrency int
	Backoff        []time.Duration
	LagInterval    time.Duration
	// BeforeAck is passed to the runner: returning false skips the ack of a
	// committed message, as a crash between commit and ack would. Tests
	// only.
	BeforeAck func(natsbus.Delivery) bool
}

// Ingester writes batches exactly once (biz.Ingester).
type Ingester interface {
	Ingest(ctx context.Context, recs []biz.Record) (biz.IngestResult, error)
}

// errShuttingDown is the handler's answer to batches that arrive after
// Stop began: they are nak'ed and stay in JetStream for the next start.
var errShuttingDown = errors.New("log-service is shutting down")

// Consumer runs Workers pull loops on the durable. Each loop's batch is
// one flush: BatchSize messages, or fewer when no message came for Linger.
// Back-pressure: a failed flush naks its messages with backoff, so while
// ClickHouse is down the events stay in JetStream and MaxAckPending bounds
// what this process holds.
type Consumer struct {
	cfg  Config
	js   jetstream.JetStream
	ing  Ingester
	m    *metrics.Metrics
	log  *slog.Logger
	ecfg natsbus.ConsumerConfig

	runner   *natsbus.Consumer
	runCtx   context.Context
	cancel   context.CancelFunc
	started  atomic.Bool
	done     chan struct{}
	draining atomic.Bool

	mu      sync.Mutex
	pending map[uint64]struct{} // stream sequences handed to a batch and not yet settled
}

// New creates (or updates) the durable consumer.
func New(ctx context.Context, js jetstream.JetStream, cfg Config, ing Ingester, m *metrics.Metrics, log *slog.Logger) (*Consumer, error) {
	c := &Consumer{cfg: cfg, js: js, ing: ing, m: m, log: log, done: make(chan struct{}), pending: make(map[uint64]struct{})}
	c.ecfg = natsbus.ConsumerConfig{
		Stream:         cfg.Names.Stream(events.StreamLogs),
		Durable:        events.DurableLogs,
		FilterSubject:  cfg.Names.Subject(events.SubjectLogWrite),
		DeadSubject:    cfg.Names.DeadSubject(events.StreamLogs),
		BatchSize:      cfg.BatchSize,
		Linger:         cfg.Linger,
		AckWait:        cfg.AckWait,
		MaxAckPending:  cfg.MaxAckPending,
		AckConcurrency: cfg.AckConcurrency,
		AckMode:        cfg.AckMode,
		Backoff:        cfg.Backoff,
		BeforeAck:      cfg.BeforeAck,
		Observe:        c.observe,
		Logger:         log,
	}
	r, err := natsbus.NewConsumer(ctx, js, c.ecfg)
	if err != nil {
		return nil, err
	}
	c.runner = r
	c.runCtx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Start runs the pull loops and the lag gauge until Stop; it implements
// transport.Server. A loop whose subscription breaks is restarted.
func (c *Consumer) Start(ctx context.Context) error {
	c.started.Store(true)
	defer close(c.done)
	stop := context.AfterFunc(ctx, c.cancel)
	defer stop()
	var wg sync.WaitGroup
	for i := 0; i < c.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.work(c.runCtx)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.watchLag(c.runCtx)
	}()
	wg.Wait()
	return nil
}

// work runs one pull loop until ctx ends.
func (c *Consumer) work(ctx context.Context) {
	runner := c.runner
	for {
		err := runner.RunBatch(ctx, c.handle)
		if ctx.Err() != nil {
			return
		}
		c.log.Error("log.write pull loop stopped; restarting", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		if r, err := natsbus.NewConsumer(ctx, c.js, c.ecfg); err == nil {
			runner = r
		}
	}
}

// Stop drains: batches already handed out are committed and acknowledged,
// later ones are nak'ed, then the loops end. Messages prefetched but not
// yet handed out are redelivered after AckWait.
func (c *Consumer) Stop(ctx context.Context) error {
	c.draining.Store(true)
	if !c.started.Load() {
		c.cancel()
		return nil
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for c.pendingCount() > 0 {
		select {
		case <-ctx.Done():
			c.cancel()
			return fmt.Errorf("consumer drain: %w", ctx.Err())
		case <-t.C:
		}
	}
	c.cancel()
	select {
	case <-c.done:
	case <-ctx.Done():
		return fmt.Errorf("consumer stop: %w", ctx.Err())
	}
	// Asynchronous acks may still sit in the client's buffer.
	if err := c.js.Conn().FlushWithContext(ctx); err != nil {
		return fmt.Errorf("consumer stop: flush acks: %w", err)
	}
	return nil
}

// Lag returns the durable's unacknowledged messages.
func (c *Consumer) Lag(ctx context.Context) (uint64, error) { return c.runner.Lag(ctx) }

func (c *Consumer) watchLag(ctx context.Context) {
	t := time.NewTicker(c.cfg.LagInterval)
	defer t.Stop()
	for {
		lctx, cancel := context.WithTimeout(ctx, c.cfg.LagInterval)
		if lag, err := c.runner.Lag(lctx); err == nil {
			c.m.ConsumerLag.Set(float64(lag))
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// handle is the batch handler: decode, flush, and one error per delivery
// (nil: ack; Permanent: dead-letter; other: nak with backoff).
func (c *Consumer) handle(ctx context.Context, ds []natsbus.Delivery) []error {
	c.track(ds)
	errs := make([]error, len(ds))
	if c.draining.Load() {
		for i := range errs {
			errs[i] = errShuttingDown
		}
		return errs
	}
	recs := make([]biz.Record, 0, len(ds))
	idx := make([]int, 0, len(ds))
	now := time.Now()
	for i, d := range ds {
		rec, err := Decode(d.Env, now)
		if err != nil {
			errs[i] = natsbus.Permanent(err)
			continue
		}
		recs = append(recs, rec)
		idx = append(idx, i)
	}
	if len(recs) == 0 {
		return errs
	}
	defer c.keepAlive(ds)()
	// The flush outlives a shutdown signal (the runner's ctx) so that a
	// batch in progress commits; FlushTimeout < AckWait bounds it.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.FlushTimeout)
	defer cancel()
	fctx, span := tracer.Start(fctx, "log.write flush", trace.WithLinks(links(ds)...),
		trace.WithAttributes(attribute.Int("lurus.batch_size", len(recs))))
	defer span.End()
	start := time.Now()
	res, err := c.ing.Ingest(fctx, recs)
	c.m.ObserveFlush(metrics.SourceNATS, res, time.Since(start), err)
	span.SetAttributes(attribute.Int("lurus.rows_inserted", res.Inserted), attribute.Int("lurus.duplicates", res.Duplicates))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		c.log.Warn("log flush failed; batch will be redelivered", "rows", len(recs), "err", err)
		for _, i := range idx {
			errs[i] = err
		}
	}
	return errs
}

// tracer makes the flush spans (exported only when OTEL_* configures it).
var tracer = otel.Tracer("github.com/lurus-switch/lurus-switch/log-service/internal/consumer")

// maxLinks bounds the producer traces a flush span links to.
const maxLinks = 32

// links returns links to the traces of the first deliveries (the gateway
// requests whose logs are being written).
func links(ds []natsbus.Delivery) []trace.Link {
	var out []trace.Link
	for _, d := range ds {
		if sc := trace.SpanContextFromContext(d.Ctx); sc.IsValid() {
			out = append(out, trace.Link{SpanContext: sc})
			if len(out) == maxLinks {
				break
			}
		}
	}
	return out
}

// Decode turns a log.write envelope into a valid record; an error means the
// message can never succeed.
func Decode(env events.Envelope, now time.Time) (biz.Record, error) {
	if env.Type != events.TypeLogWrite {
		return biz.Record{}, fmt.Errorf("unexpected message type %q on log.write", env.Type)
	}
	ev, err := events.DecodeData[events.LogRecord](env)
	if err != nil {
		return biz.Record{}, err
	}
	rec := biz.Record(ev)
	if err := rec.Validate(now); err != nil {
		return biz.Record{}, err
	}
	return rec, nil
}

// keepAlive tells JetStream every AckWait/3 that the batch is still being
// worked on, so no message of it is redelivered (to this or another
// replica) while its flush runs. The returned func stops it.
func (c *Consumer) keepAlive(ds []natsbus.Delivery) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(c.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, d := range ds {
					if d.Part == 0 { // once per message, not per envelope of a batch
						_ = d.Msg.InProgress()
					}
				}
			}
		}
	}()
	return func() { close(done) }
}

func (c *Consumer) track(ds []natsbus.Delivery) {
	c.mu.Lock()
	for _, d := range ds {
		c.pending[d.StreamSeq] = struct{}{}
	}
	c.mu.Unlock()
}

func (c *Consumer) pendingCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// observe is the runner's Observe hook: it settles tracked messages and
// counts dead letters.
func (c *Consumer) observe(o natsbus.Outcome, d natsbus.Delivery, _ error) {
	if o == natsbus.OutcomeDead {
		c.m.DeadLetters.Inc()
	}
	c.mu.Lock()
	delete(c.pending, d.StreamSeq)
	c.mu.Unlock()
}

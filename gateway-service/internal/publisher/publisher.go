// Package publisher delivers the gateway's billing.usage and log.write
// events without ever blocking a response: Emit puts an outcome on a
// bounded in-memory queue; one goroutine encodes envelopes and publishes
// them to JetStream asynchronously, waiting for the PubAcks; whatever
// cannot be published (NATS unreachable, acks missing, queue full) goes to
// the file Outbox and is replayed in order when NATS is back. A message's
// id is the request id when it carries one event, or a batch id of its own
// when it carries several (frame); the outbox keeps that id, so a message
// published again is dropped by the stream's duplicate window, and each
// event inside keeps its request id as its envelope id.
package publisher

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
)

// Config tunes a Publisher.
type Config struct {
	QueueSize      int
	PublishTimeout time.Duration
	MaxInFlight    int
	// RetryInterval is how often the outbox is replayed while NATS is
	// back (default 1 s).
	RetryInterval time.Duration
	// Linger: once an event arrived, wait up to this long for more before
	// publishing, so a quiet stream of requests still shares rounds of
	// writes and acks (0: publish at once).
	Linger time.Duration
	// BatchMaxEvents and BatchMaxBytes bound a batch message (frame);
	// BatchMaxEvents ≤ 1 publishes one message per event.
	BatchMaxEvents int
	BatchMaxBytes  int
}

// Metrics receives the publisher's measurements.
type Metrics interface {
	Queued(n int)
	OutboxBytes(n int64)
	Published(subject string, n int)
	// Lost counts events of a subject that could be neither published nor
	// appended to the outbox.
	Lost(subject string, n int)
}

// Publisher is a biz.EventSink.
type Publisher struct {
	cfg     Config
	nc      *nats.Conn
	js      jetstream.JetStream
	names   events.Names
	outbox  *Outbox
	log     *slog.Logger
	metrics Metrics

	q       *queue
	done    chan struct{}
	spilled atomic.Int64
	// losing is set when the last attempt to store events (a publish or
	// an outbox append) lost them, cleared by the next that succeeds.
	losing atomic.Bool

	// The Run goroutine's reusable memory: envelopes and batch bodies of
	// the round being published, and its records.
	arena arena
	recs  []Record
}

// New returns a publisher; Run starts it.
func New(cfg Config, nc *nats.Conn, js jetstream.JetStream, names events.Names, ob *Outbox, log *slog.Logger, m Metrics) *Publisher {
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = time.Second
	}
	return &Publisher{cfg: cfg, nc: nc, js: js, names: names, outbox: ob, log: log, metrics: m,
		q: newQueue(cfg.QueueSize), done: make(chan struct{})}
}

// Emit implements biz.EventSink: it never waits for the network. A full
// queue (or one closed by shutdown) spills to the outbox (a local file
// append).
func (p *Publisher) Emit(o *biz.Outcome) {
	if e, ok := p.q.push(o); !ok {
		p.spill(e)
	}
}

func (p *Publisher) spill(e queued) {
	recs := p.records(nil, e, nil)
	if err := p.outbox.Append(recs...); err != nil {
		p.lost(recs, err)
		return
	}
	p.losing.Store(false)
	p.spilled.Add(int64(len(recs)))
	p.metrics.OutboxBytes(p.outbox.Bytes())
}

// Losing reports whether events are being lost now: the last attempt to
// store some (a publish, or an outbox append while NATS is unreachable)
// failed, and none succeeded since. The relay refuses billable requests
// meanwhile: their usage could not be billed.
func (p *Publisher) Losing() bool { return p.losing.Load() }

// lost counts and logs records that could not be stored, with their
// request ids (so an operator can reconcile them with the access log).
func (p *Publisher) lost(recs []Record, err error) {
	p.losing.Store(true)
	var ids []string
	seen := map[string]bool{}
	for _, r := range recs {
		p.metrics.Lost(r.Subject, r.count())
		envs, perr := events.ParseBody(r.Body)
		if perr != nil {
			continue
		}
		for _, e := range envs {
			if !seen[e.ID] {
				seen[e.ID] = true
				ids = append(ids, e.ID)
			}
		}
	}
	p.log.Error("events lost: outbox append failed", "err", err, "messages", len(recs), "request_ids", ids)
}

// Run publishes until ctx ends, then stops taking new outcomes and drains
// the queue to NATS (or the outbox) before returning.
func (p *Publisher) Run(ctx context.Context) {
	defer close(p.done)
	tick := time.NewTicker(p.cfg.RetryInterval)
	defer tick.Stop()
	batch := make([]queued, 0, roundMax)
	for {
		select {
		case <-p.q.wake:
			batch = p.round(ctx, batch[:0])
		case <-tick.C:
			if p.outbox.Pending() && p.nc.IsConnected() {
				p.replay()
			}
		case <-ctx.Done():
			p.drain()
			return
		}
		p.metrics.Queued(p.q.len())
	}
}

// Done is closed when Run has drained and returned.
func (p *Publisher) Done() <-chan struct{} { return p.done }

// round publishes what is queued: once the first outcome of a round is
// in, it waits up to Linger for more (less if the round fills up), takes
// up to roundMax and publishes them. Whatever is left starts the next
// round at once.
func (p *Publisher) round(ctx context.Context, batch []queued) []queued {
	if p.cfg.Linger > 0 && p.q.len() < roundMax {
		t := time.NewTimer(p.cfg.Linger)
		select {
		case <-t.C:
		case <-p.q.wake: // the round filled up
		case <-ctx.Done():
		}
		t.Stop()
	}
	batch = p.q.take(batch, roundMax)
	if len(batch) > 0 {
		p.handle(batch)
	}
	if p.q.len() > 0 {
		p.q.signal()
	}
	clear(batch) // do not keep outcomes alive until the next round
	return batch
}

// drain closes the queue to new outcomes and flushes it.
func (p *Publisher) drain() {
	if rest := p.q.close(); len(rest) > 0 {
		p.handle(rest)
	}
	if p.outbox.Pending() && p.nc.IsConnected() {
		p.replay()
	}
	p.metrics.Queued(0)
	p.metrics.OutboxBytes(p.outbox.Bytes())
}

// handle publishes a batch, or appends it to the outbox when the outbox
// already holds older events (order) or NATS is down.
func (p *Publisher) handle(batch []queued) {
	// The round is encoded into p.arena, which is reused only when every
	// message of it was acknowledged: a publish still pending after a
	// timeout may be sent again by the client from the same memory.
	acked := false
	defer func() {
		p.arena.reset(acked)
		clear(p.recs)
		p.recs = p.recs[:0]
	}()
	recs := p.recs[:0]
	for _, e := range batch {
		recs = p.records(recs, e, &p.arena)
	}
	recs = frame(recs, p.cfg.BatchMaxEvents, p.cfg.BatchMaxBytes, &p.arena)
	p.recs = recs
	if p.outbox.Pending() || !p.nc.IsConnected() {
		if p.nc.IsConnected() {
			p.replay()
		}
		if p.outbox.Pending() || !p.nc.IsConnected() {
			p.toOutbox(recs) // copies: Append encodes each record at once
			acked = true
			return
		}
	}
	n, err := p.publish(recs)
	if err != nil {
		p.log.Warn("publishing events failed; using the outbox", "err", err, "unpublished", len(recs)-n)
		p.toOutbox(recs[n:])
		return
	}
	p.losing.Store(false)
	acked = true
}

func (p *Publisher) toOutbox(recs []Record) {
	if len(recs) == 0 {
		return
	}
	if err := p.outbox.Append(recs...); err != nil {
		p.lost(recs, err)
	} else {
		p.losing.Store(false)
	}
	p.metrics.OutboxBytes(p.outbox.Bytes())
}

// replay moves what is queued into the outbox (so everything older than
// the outbox's newest record is in it), then publishes the outbox.
func (p *Publisher) replay() {
	var recs []Record
	for _, e := range p.q.take(nil, 0) {
		recs = p.records(recs, e, nil)
	}
	p.toOutbox(frame(recs, p.cfg.BatchMaxEvents, p.cfg.BatchMaxBytes, nil))
	if err := p.outbox.Replay(p.publish); err != nil {
		p.log.Warn("outbox replay paused", "err", err)
	}
	p.metrics.OutboxBytes(p.outbox.Bytes())
}

// publish sends recs (each one message) asynchronously and waits for
// their acks. It returns how many leading records are known stored; the
// rest must be retried.
func (p *Publisher) publish(recs []Record) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.PublishTimeout)
	defer cancel()
	done := 0
	for done < len(recs) {
		end := min(done+p.cfg.MaxInFlight, len(recs))
		futs := make([]jetstream.PubAckFuture, 0, end-done)
		var perr error
		for _, r := range recs[done:end] {
			f, err := p.js.PublishMsgAsync(p.msg(r))
			if err != nil {
				perr = err
				break
			}
			futs = append(futs, f)
		}
		for i, f := range futs {
			select {
			case <-f.Ok():
				p.metrics.Published(recs[done+i].Subject, recs[done+i].count())
			case err := <-f.Err():
				return done + i, err
			case <-ctx.Done():
				return done + i, ctx.Err()
			}
		}
		done += len(futs)
		if perr != nil {
			return done, perr
		}
	}
	return done, nil
}

func (p *Publisher) msg(r Record) *nats.Msg {
	if r.N > 1 {
		return natsbus.NewBatchMsg(p.names.Subject(r.Subject), r.ID, r.Type, r.N, r.Body)
	}
	ctx := context.Background()
	if r.TraceParent != "" {
		ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier{"traceparent": r.TraceParent})
	}
	return natsbus.NewRawMsg(ctx, p.names.Subject(r.Subject), r.ID, r.Type, r.Body)
}

// records appends the events of an outcome to out: billing.usage when
// funds were reserved (so billing settles or releases them), log.write
// always; their bodies are allocated from a (nil: the heap).
func (p *Publisher) records(out []Record, e queued, a *arena) []Record {
	if a == nil {
		a = &arena{}
	}
	o := e.o
	tp := traceParent(o.Trace)
	if o.Reserved {
		start := len(a.buf)
		a.buf = appendUsageEnvelope(a.buf, o, tp)
		out = append(out, Record{Seq: e.seq, Subject: events.SubjectBillingUsage, ID: o.RequestID,
			Type: events.TypeBillingUsage, TraceParent: tp, Body: a.since(start)})
	}
	start := len(a.buf)
	a.buf = appendLogEnvelope(a.buf, o, tp)
	return append(out, Record{Seq: e.seq, Subject: events.SubjectLogWrite, ID: o.RequestID,
		Type: events.TypeLogWrite, TraceParent: tp, Body: a.since(start)})
}

func traceParent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), c)
	return c["traceparent"]
}

// Wait blocks until Run returned or ctx ends.
func (p *Publisher) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return errors.New("publisher: drain did not finish in time")
	}
}

package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

// Delivery is one decoded envelope handed to a handler. A message usually
// carries one envelope; a batch message (SplitBody) carries several, each
// handed over as its own Delivery with the same Msg.
type Delivery struct {
	// Ctx carries the producer's trace context: the envelope's own
	// (Envelope.TraceParent), else the one in the message headers.
	Ctx          context.Context
	Env          events.Envelope
	Msg          jetstream.Msg
	StreamSeq    uint64
	NumDelivered uint64
	// Part is the envelope's index in its message, Parts how many the
	// message carries (1 unless it is a batch).
	Part, Parts int
}

// permanentError marks a handler error after which a message must not be
// retried.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying: the runner moves the message to
// the dead subject of its stream (with err as the reason) and acks it. Any
// error not marked Permanent is retried with backoff, because a transient
// fault (database down) must never lose a billing event.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err: err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Outcome is what the runner did with a message.
type Outcome string

// Outcomes reported to ConsumerConfig.Observe.
const (
	OutcomeAcked   Outcome = "acked"
	OutcomeRetried Outcome = "retried"
	OutcomeDead    Outcome = "dead"
	OutcomeSkipped Outcome = "ack_skipped" // BeforeAck hook declined the ack
)

// ConsumerConfig describes a durable pull consumer. Zero values take the
// defaults in parentheses.
type ConsumerConfig struct {
	Stream        string // full stream name, e.g. events.Names.Stream(events.StreamBilling)
	Durable       string
	FilterSubject string // one subject (wildcards allowed): NATS 2.9 has no multi-filter
	DeadSubject   string // where undecodable / permanently failed messages go

	BatchSize      int             // max envelopes per handler call (100); a batch message is never split
	PrefetchBytes  int             // bound on messages buffered in the client, in bytes (4 MiB; ≥ 2 × the largest message)
	Linger         time.Duration   // how long to wait to fill a batch once one message is in (2 ms)
	AckWait        time.Duration   // redelivery after this without ack (30 s)
	MaxAckPending  int             // bound on unacked messages in flight (4 × BatchSize)
	Backoff        []time.Duration // nak delays by delivery count (1 s, 2 s, 5 s, 10 s, 30 s)
	AckConcurrency int             // parallel AckSync calls per batch (32)
	// AckMode chooses AckSync (the default) or AckAsync; see AckMode.
	AckMode AckMode

	// BeforeAck, when set, is called after a message was handled successfully
	// and before it is acked; returning false skips the ack, as a crash
	// between commit and ack would. Tests use it; production leaves it nil.
	BeforeAck func(Delivery) bool
	// Observe, when set, is told the outcome of every message (metrics).
	Observe func(Outcome, Delivery, error)
	Logger  *slog.Logger
}

func (c *ConsumerConfig) defaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 100
	}
	if c.PrefetchBytes <= 0 {
		c.PrefetchBytes = 4 << 20
	}
	if c.Linger <= 0 {
		c.Linger = 2 * time.Millisecond
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = 4 * c.BatchSize
	}
	if len(c.Backoff) == 0 {
		c.Backoff = []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second}
	}
	if c.AckConcurrency <= 0 {
		c.AckConcurrency = 32
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Consumer runs a durable pull consumer: it decodes each message, hands
// batches to a handler, acks with AckSync what succeeded, naks with backoff
// what failed, and dead-letters what cannot be decoded or failed
// permanently. Delivery is at least once; handlers must be idempotent.
type Consumer struct {
	js   jetstream.JetStream
	cons jetstream.Consumer
	cfg  ConsumerConfig
}

// NewConsumer creates (or updates) the durable consumer and returns its
// runner. A restarted process resumes where the durable left off.
func NewConsumer(ctx context.Context, js jetstream.JetStream, cfg ConsumerConfig) (*Consumer, error) {
	cfg.defaults()
	if cfg.Stream == "" || cfg.Durable == "" || cfg.DeadSubject == "" {
		return nil, errors.New("events: consumer needs Stream, Durable and DeadSubject")
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, cfg.Stream, jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		FilterSubject: cfg.FilterSubject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: cfg.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("events: consumer %s on %s: %w", cfg.Durable, cfg.Stream, err)
	}
	return &Consumer{js: js, cons: cons, cfg: cfg}, nil
}

// Handler handles one delivery; see Run.
type Handler func(ctx context.Context, d Delivery) error

// BatchHandler handles a batch. It returns one error per delivery, in order,
// or nil when all succeeded.
type BatchHandler func(ctx context.Context, ds []Delivery) []error

// Run calls h for each message in turn until ctx is done.
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	return c.RunBatch(ctx, func(ctx context.Context, ds []Delivery) []error {
		errs := make([]error, len(ds))
		for i, d := range ds {
			errs[i] = h(ctx, d)
		}
		return errs
	})
}

// RunBatch calls h with batches of up to BatchSize messages until ctx is
// done. It returns nil when ctx ends, or the error that stopped it.
func (c *Consumer) RunBatch(ctx context.Context, h BatchHandler) error {
	// Bounded by bytes, not messages: a message may be one envelope or a
	// batch of hundreds.
	it, err := c.cons.Messages(jetstream.PullMaxBytes(c.cfg.PrefetchBytes))
	if err != nil {
		return fmt.Errorf("events: consume %s: %w", c.cfg.Durable, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()

	var batch []part
	for {
		batch = batch[:0]
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return fmt.Errorf("events: consumer %s stopped: %w", c.cfg.Durable, err)
			}
			c.cfg.Logger.Warn("consumer next", "durable", c.cfg.Durable, "err", err)
			continue
		}
		batch = c.decode(ctx, msg, batch)
		for len(batch) < c.cfg.BatchSize {
			msg, err := it.Next(jetstream.NextMaxWait(c.cfg.Linger))
			if err != nil {
				break
			}
			batch = c.decode(ctx, msg, batch)
		}
		c.handle(ctx, h, batch)
		c.settle(ctx, batch)
	}
}

// part is one envelope of a message on its way through the runner: err is
// why it failed (decoding, or the handler's answer).
type part struct {
	d   Delivery
	raw []byte // what the dead subject gets if it fails: the envelope, or the whole body
	err error
}

// decode appends the envelopes of msg to batch. What cannot be decoded
// gets a Permanent error and never reaches the handler: the whole message
// when its body is no envelope or batch, else the envelope alone.
func (c *Consumer) decode(ctx context.Context, msg jetstream.Msg, batch []part) []part {
	d := Delivery{Ctx: ContextFromHeaders(ctx, msg.Headers()), Msg: msg, Parts: 1}
	if md, err := msg.Metadata(); err == nil {
		d.StreamSeq = md.Sequence.Stream
		d.NumDelivered = md.NumDelivered
	}
	raws, err := events.SplitBody(msg.Data())
	if err != nil {
		return append(batch, part{d: d, raw: msg.Data(), err: Permanent(err)})
	}
	base := d.Ctx
	d.Parts = len(raws)
	for i, raw := range raws {
		pd := d
		pd.Part = i
		env, err := events.ParseEnvelope(raw)
		if err != nil {
			batch = append(batch, part{d: pd, raw: raw, err: Permanent(err)})
			continue
		}
		pd.Env, pd.Ctx = env, envelopeContext(base, env)
		batch = append(batch, part{d: pd, raw: raw})
	}
	return batch
}

// handle hands the decoded envelopes of batch to h and records its answers.
func (c *Consumer) handle(ctx context.Context, h BatchHandler, batch []part) {
	ds := make([]Delivery, 0, len(batch))
	idx := make([]int, 0, len(batch))
	for i, p := range batch {
		if p.err == nil {
			ds = append(ds, p.d)
			idx = append(idx, i)
		}
	}
	if len(ds) == 0 {
		return
	}
	errs := h(ctx, ds)
	for j, i := range idx {
		if j < len(errs) {
			batch[i].err = errs[j]
		}
	}
}

// settle finishes every message of batch (its parts are consecutive),
// up to AckConcurrency at once.
func (c *Consumer) settle(ctx context.Context, batch []part) {
	sem := make(chan struct{}, c.cfg.AckConcurrency)
	var wg sync.WaitGroup
	for start := 0; start < len(batch); {
		end := start + 1
		for end < len(batch) && batch[end].d.Part > 0 {
			end++
		}
		parts := batch[start:end]
		start = end
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c.finish(ctx, parts)
		}()
	}
	wg.Wait()
}

// finish acknowledges one message by its parts' outcomes. A transient
// failure of any part naks the whole message with backoff (the parts that
// succeeded are redone, idempotently, on redelivery); parts that failed
// permanently are moved to the dead subject one by one; then the message
// is acked.
func (c *Consumer) finish(ctx context.Context, parts []part) {
	d := parts[0].d
	for _, p := range parts {
		if p.err != nil && !IsPermanent(p.err) {
			c.retry(parts, p.err)
			return
		}
	}
	dead, handled := 0, -1
	for i, p := range parts {
		if p.err == nil {
			if handled < 0 {
				handled = i
			}
			continue
		}
		if err := c.deadLetter(ctx, p.d, p.raw, p.err); err != nil {
			c.cfg.Logger.Error("dead-letter publish failed; will retry", "durable", c.cfg.Durable, "seq", d.StreamSeq, "err", err)
			c.retry(parts, err)
			return
		}
		dead++
	}
	if handled >= 0 && c.cfg.BeforeAck != nil && !c.cfg.BeforeAck(parts[handled].d) {
		for _, p := range parts {
			c.observe(OutcomeSkipped, p.d, nil)
		}
		return
	}
	var err error
	if dead > 0 {
		err = d.Msg.DoubleAck(ctx)
	} else {
		err = c.ack(ctx, d)
	}
	if err != nil {
		// The work is committed; redelivery will find it done.
		c.cfg.Logger.Warn("ack failed; message will be redelivered", "durable", c.cfg.Durable, "seq", d.StreamSeq, "err", err)
	}
	for _, p := range parts {
		if p.err == nil {
			c.observe(OutcomeAcked, p.d, nil)
		} else {
			c.observe(OutcomeDead, p.d, p.err)
		}
	}
}

// retry naks the message of parts with the backoff of its delivery count.
func (c *Consumer) retry(parts []part, cause error) {
	d := parts[0].d
	delay := c.cfg.Backoff[max(0, min(int(d.NumDelivered)-1, len(c.cfg.Backoff)-1))]
	if err := d.Msg.NakWithDelay(delay); err != nil {
		c.cfg.Logger.Warn("nak failed", "durable", c.cfg.Durable, "seq", d.StreamSeq, "err", err)
	}
	c.cfg.Logger.Warn("message will be retried", "durable", c.cfg.Durable, "seq", d.StreamSeq,
		"delivered", d.NumDelivered, "delay", delay.String(), "err", cause)
	for _, p := range parts {
		c.observe(OutcomeRetried, p.d, cause)
	}
}

// deadLetter stores body (the envelope of d, or the whole message when
// it could not be split) on the dead subject with the reason.
func (c *Consumer) deadLetter(ctx context.Context, d Delivery, body []byte, reason error) error {
	m := nats.NewMsg(c.cfg.DeadSubject)
	m.Data = body
	id := c.cfg.Stream + "-" + strconv.FormatUint(d.StreamSeq, 10)
	if d.Parts > 1 {
		m.Header.Set(events.HeaderDeadPart, strconv.Itoa(d.Part))
		id += "-" + strconv.Itoa(d.Part)
	}
	m.Header.Set(events.HeaderDeadReason, reason.Error())
	m.Header.Set(events.HeaderDeadFrom, d.Msg.Subject())
	m.Header.Set(events.HeaderDeadSeq, strconv.FormatUint(d.StreamSeq, 10))
	m.Header.Set(jetstream.MsgIDHeader, id)
	if _, err := c.js.PublishMsg(ctx, m); err != nil {
		return err
	}
	c.cfg.Logger.Error("message dead-lettered", "durable", c.cfg.Durable, "seq", d.StreamSeq, "part", d.Part,
		"subject", d.Msg.Subject(), "reason", reason)
	return nil
}

func (c *Consumer) observe(o Outcome, d Delivery, err error) {
	if c.cfg.Observe != nil {
		c.cfg.Observe(o, d, err)
	}
}

// Lag returns how many messages are not yet acked: those not yet delivered
// plus those delivered and awaiting ack.
func (c *Consumer) Lag(ctx context.Context) (uint64, error) {
	info, err := c.cons.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}

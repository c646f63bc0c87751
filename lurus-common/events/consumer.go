package events

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
)

// Delivery is one decoded message handed to a handler.
type Delivery struct {
	// Ctx carries the producer's trace context from the message headers.
	Ctx          context.Context
	Env          Envelope
	Msg          jetstream.Msg
	StreamSeq    uint64
	NumDelivered uint64
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
	Stream        string // full stream name, e.g. Names.Stream(StreamBilling)
	Durable       string
	FilterSubject string // one subject (wildcards allowed): NATS 2.9 has no multi-filter
	DeadSubject   string // where undecodable / permanently failed messages go

	BatchSize      int             // max messages per handler call (100)
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
	it, err := c.cons.Messages(jetstream.PullMaxMessages(2 * c.cfg.BatchSize))
	if err != nil {
		return fmt.Errorf("events: consume %s: %w", c.cfg.Durable, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()

	batch := make([]Delivery, 0, c.cfg.BatchSize)
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
		if d, ok := c.decode(ctx, msg); ok {
			batch = append(batch, d)
		}
		for len(batch) < c.cfg.BatchSize {
			msg, err := it.Next(jetstream.NextMaxWait(c.cfg.Linger))
			if err != nil {
				break
			}
			if d, ok := c.decode(ctx, msg); ok {
				batch = append(batch, d)
			}
		}
		if len(batch) == 0 {
			continue
		}
		errs := h(ctx, batch)
		c.settle(ctx, batch, errs)
	}
}

// decode parses a message; one that cannot be parsed is dead-lettered here
// and never reaches the handler.
func (c *Consumer) decode(ctx context.Context, msg jetstream.Msg) (Delivery, bool) {
	d := Delivery{Ctx: ContextFromHeaders(ctx, msg.Headers()), Msg: msg}
	if md, err := msg.Metadata(); err == nil {
		d.StreamSeq = md.Sequence.Stream
		d.NumDelivered = md.NumDelivered
	}
	env, err := ParseEnvelope(msg.Data())
	if err != nil {
		c.deadLetter(ctx, d, err)
		return d, false
	}
	d.Env = env
	return d, true
}

func (c *Consumer) settle(ctx context.Context, batch []Delivery, errs []error) {
	sem := make(chan struct{}, c.cfg.AckConcurrency)
	var wg sync.WaitGroup
	for i := range batch {
		var herr error
		if errs != nil && i < len(errs) {
			herr = errs[i]
		}
		d := batch[i]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c.finish(ctx, d, herr)
		}()
	}
	wg.Wait()
}

func (c *Consumer) finish(ctx context.Context, d Delivery, herr error) {
	switch {
	case herr == nil:
		if c.cfg.BeforeAck != nil && !c.cfg.BeforeAck(d) {
			c.observe(OutcomeSkipped, d, nil)
			return
		}
		if err := c.ack(ctx, d); err != nil {
			// The work is committed; redelivery will find it done.
			c.cfg.Logger.Warn("ack failed; message will be redelivered", "durable", c.cfg.Durable, "seq", d.StreamSeq, "err", err)
		}
		c.observe(OutcomeAcked, d, nil)
	case IsPermanent(herr):
		c.deadLetter(ctx, d, herr)
	default:
		delay := c.cfg.Backoff[max(0, min(int(d.NumDelivered)-1, len(c.cfg.Backoff)-1))]
		if err := d.Msg.NakWithDelay(delay); err != nil {
			c.cfg.Logger.Warn("nak failed", "durable", c.cfg.Durable, "seq", d.StreamSeq, "err", err)
		}
		c.cfg.Logger.Warn("message will be retried", "durable", c.cfg.Durable, "seq", d.StreamSeq,
			"delivered", d.NumDelivered, "delay", delay.String(), "err", herr)
		c.observe(OutcomeRetried, d, herr)
	}
}

// deadLetter stores the message on the dead subject with the reason, then
// acks it. If the dead subject cannot be written, the message is nak'ed so
// it is not lost.
func (c *Consumer) deadLetter(ctx context.Context, d Delivery, reason error) {
	m := nats.NewMsg(c.cfg.DeadSubject)
	m.Data = d.Msg.Data()
	m.Header.Set(HeaderDeadReason, reason.Error())
	m.Header.Set(HeaderDeadFrom, d.Msg.Subject())
	m.Header.Set(HeaderDeadSeq, strconv.FormatUint(d.StreamSeq, 10))
	m.Header.Set(jetstream.MsgIDHeader, c.cfg.Stream+"-"+strconv.FormatUint(d.StreamSeq, 10))
	if _, err := c.js.PublishMsg(ctx, m); err != nil {
		c.cfg.Logger.Error("dead-letter publish failed; will retry", "durable", c.cfg.Durable, "seq", d.StreamSeq, "err", err)
		_ = d.Msg.NakWithDelay(c.cfg.Backoff[0])
		c.observe(OutcomeRetried, d, err)
		return
	}
	if err := d.Msg.DoubleAck(ctx); err != nil {
		c.cfg.Logger.Warn("ack of dead-lettered message failed", "durable", c.cfg.Durable, "seq", d.StreamSeq, "err", err)
	}
	c.cfg.Logger.Error("message dead-lettered", "durable", c.cfg.Durable, "seq", d.StreamSeq, "subject", d.Msg.Subject(), "reason", reason)
	c.observe(OutcomeDead, d, reason)
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

package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/eventid"
)

// ErrSlowSubscriber ends a subscription whose reader fell behind by more
// than its buffer. The reader resumes by subscribing again with the last
// event id it handled.
var ErrSlowSubscriber = errors.New("events: subscriber too slow, buffer overflowed")

// ErrReplayBusy refuses a resume when MaxReplays replays are already
// running and none ended within ReplayWait: each replay is a JetStream
// consumer, so a burst of reconnects must not create them without bound.
// Services answer it with 503 UNAVAILABLE and Retry-After.
var ErrReplayBusy = errors.New("events: too many resumes in progress")

// ErrFeedClosed ends every subscription when the feed stops.
var ErrFeedClosed = errors.New("events: feed closed")

// FeedConfig tunes a Feed. Zero values take the defaults in parentheses.
type FeedConfig struct {
	Buffer        int           // live events buffered per subscription (256)
	MaxAge        time.Duration // how far back a resume may reach; the stream's max age (24 h)
	ClockSkew     time.Duration // replay starts this much before the last event id's time (5 s)
	ReplayTimeout time.Duration // bound on one replay (10 s)
	// MaxReplays caps replays (resumes from a last event id, each a
	// JetStream consumer) running at once in this process (64); a resume
	// beyond it waits up to ReplayWait (1 s) for one to end, then fails
	// with ErrReplayBusy.
	MaxReplays int
	ReplayWait time.Duration
	Logger     *slog.Logger
}

// Feed delivers user events (events.user.<id>.<type>) to in-process
// subscribers: one ordered JetStream consumer per process receives every
// user event and fans it out by user id, so every replica sees every event,
// and a subscriber can resume from the last event id it saw without gaps or
// duplicates. billing-service's SSE route and sync-service both use it.
type Feed struct {
	js    jetstream.JetStream
	names events.Names
	cfg   FeedConfig

	replays chan struct{} // a slot per running replay (MaxReplays)

	mu     sync.RWMutex
	subs   map[string]map[*Subscription]struct{}
	closed bool
	ready  chan struct{}
}

// NewFeed returns a feed; call Run to start it.
func NewFeed(js jetstream.JetStream, names events.Names, cfg FeedConfig) *Feed {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 256
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 24 * time.Hour
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = 5 * time.Second
	}
	if cfg.ReplayTimeout <= 0 {
		cfg.ReplayTimeout = 10 * time.Second
	}
	if cfg.MaxReplays <= 0 {
		cfg.MaxReplays = 64
	}
	if cfg.ReplayWait <= 0 {
		cfg.ReplayWait = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Feed{js: js, names: names, cfg: cfg, replays: make(chan struct{}, cfg.MaxReplays), subs: map[string]map[*Subscription]struct{}{}, ready: make(chan struct{})}
}

// Ready is closed once the live consumer is receiving.
func (f *Feed) Ready() <-chan struct{} { return f.ready }

// Run receives live events until ctx is done, then ends every subscription
// with ErrFeedClosed. The ordered consumer recreates itself after server
// restarts or gaps.
func (f *Feed) Run(ctx context.Context) error {
	defer f.closeAll()
	cons, err := f.js.OrderedConsumer(ctx, f.names.Stream(events.StreamEvents), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{f.names.AllUsersFilter()},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return fmt.Errorf("events: feed consumer: %w", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("events: feed messages: %w", err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	close(f.ready)
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return fmt.Errorf("events: feed stopped: %w", err)
			}
			f.cfg.Logger.Warn("feed next", "err", err)
			continue
		}
		userID, _, ok := f.names.ParseUserSubject(msg.Subject())
		if !ok {
			continue
		}
		env, err := events.ParseEnvelope(msg.Data())
		if err != nil {
			f.cfg.Logger.Warn("feed: undecodable user event skipped", "subject", msg.Subject(), "err", err)
			continue
		}
		var seq uint64
		if md, err := msg.Metadata(); err == nil {
			seq = md.Sequence.Stream
		}
		f.dispatch(userID, env, seq)
	}
}

// dispatch hands env, stored at stream sequence seq (0: unknown), to the
// user's subscriptions.
func (f *Feed) dispatch(userID string, env events.Envelope, seq uint64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for s := range f.subs[userID] {
		s.push(env, seq)
	}
}

func (f *Feed) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for _, set := range f.subs {
		for s := range set {
			s.fail(ErrFeedClosed)
		}
	}
	f.subs = map[string]map[*Subscription]struct{}{}
}

// Subscription is one subscriber's view of a user's events.
type Subscription struct {
	// Replay holds, in order, the events after the requested last event id
	// (empty when none was given or it could not be found; see Resumed).
	// The caller sends them before reading C.
	Replay []events.Envelope
	// Resumed is true when a last event id was given and found, so Replay is
	// exactly what was missed. When false after a last event id was given,
	// the id is too old or unknown: the caller should send the full state.
	Resumed bool

	feed   *Feed
	userID string

	mu      sync.Mutex
	c       chan events.Envelope
	live    bool
	pending []sequenced
	// replayedTo is the stream sequence the replay read up to: a live
	// event stored at or before it was replayed (or precedes the last
	// event id) and is dropped. The live consumer may lag behind the
	// replay's, so such events can still arrive after the switch to live.
	replayedTo uint64
	err        error
	done       chan struct{}
}

// sequenced is an event with its stream sequence.
type sequenced struct {
	env events.Envelope
	seq uint64
}

// C delivers live events in order. It is closed when the subscription ends;
// Err then says why.
func (s *Subscription) C() <-chan events.Envelope { return s.c }

// Done is closed when the subscription ends.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err is why the subscription ended (nil while open or after Close).
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.feed.remove(s)
	s.fail(nil)
}

func (s *Subscription) push(env events.Envelope, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isDone() || s.replayed(seq) {
		return
	}
	if !s.live {
		if len(s.pending) >= s.feed.cfg.Buffer*4 {
			s.failLocked(ErrSlowSubscriber)
			return
		}
		s.pending = append(s.pending, sequenced{env, seq})
		return
	}
	select {
	case s.c <- env:
	default:
		s.failLocked(ErrSlowSubscriber)
		go s.feed.remove(s)
	}
}

// replayed reports whether the event at stream sequence seq was covered
// by the replay. s.mu is held.
func (s *Subscription) replayed(seq uint64) bool { return seq != 0 && seq <= s.replayedTo }

func (s *Subscription) isDone() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *Subscription) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failLocked(err)
}

func (s *Subscription) failLocked(err error) {
	if s.isDone() {
		return
	}
	s.err = err
	close(s.done)
	if s.c != nil {
		close(s.c)
	}
}

// Subscribe starts delivering userID's events. With lastEventID set, the
// events after it are loaded from the stream into Replay first; live events
// that arrive meanwhile follow in C without duplicates. The subscription
// ends when ctx is done, on Close, when the reader falls more than Buffer
// events behind (ErrSlowSubscriber), or when the feed stops.
func (f *Feed) Subscribe(ctx context.Context, userID, lastEventID string) (*Subscription, error) {
	if !events.ValidToken(userID) {
		return nil, fmt.Errorf("events: invalid user id %q", userID)
	}
	s := &Subscription{feed: f, userID: userID, done: make(chan struct{})}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, ErrFeedClosed
	}
	if f.subs[userID] == nil {
		f.subs[userID] = map[*Subscription]struct{}{}
	}
	f.subs[userID][s] = struct{}{}
	f.mu.Unlock()

	var replayedTo uint64
	if lastEventID != "" {
		replay, found, to, err := f.replay(ctx, userID, lastEventID)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.Replay, s.Resumed, replayedTo = replay, found, to
	}

	s.mu.Lock()
	if s.isDone() {
		err := s.err
		s.mu.Unlock()
		return nil, err
	}
	s.replayedTo = replayedTo
	s.c = make(chan events.Envelope, f.cfg.Buffer+len(s.pending))
	for _, e := range s.pending {
		if !s.replayed(e.seq) {
			s.c <- e.env
		}
	}
	s.pending = nil
	s.live = true
	s.mu.Unlock()
	context.AfterFunc(ctx, s.Close)
	return s, nil
}

func (f *Feed) remove(s *Subscription) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if set := f.subs[s.userID]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(f.subs, s.userID)
		}
	}
}

// Subscribers returns how many subscriptions are open and for how many
// distinct users.
func (f *Feed) Subscribers() (subs, users int) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, set := range f.subs {
		subs += len(set)
	}
	return subs, len(f.subs)
}

// replaySlot waits up to ReplayWait for a replay slot.
func (f *Feed) replaySlot(ctx context.Context) (release func(), err error) {
	select {
	case f.replays <- struct{}{}:
		return func() { <-f.replays }, nil
	default:
	}
	t := time.NewTimer(f.cfg.ReplayWait)
	defer t.Stop()
	select {
	case f.replays <- struct{}{}:
		return func() { <-f.replays }, nil
	case <-t.C:
		return nil, ErrReplayBusy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// replay reads userID's stored events after lastID. found is false when
// lastID is not a known event id within the stream's age. to is the stream
// sequence of the last event read (0 when not found).
func (f *Feed) replay(ctx context.Context, userID, lastID string) (out []events.Envelope, found bool, to uint64, err error) {
	at, ok := eventid.Time(lastID)
	if !ok || time.Since(at) > f.cfg.MaxAge {
		return nil, false, 0, nil
	}
	release, err := f.replaySlot(ctx)
	if err != nil {
		return nil, false, 0, err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, f.cfg.ReplayTimeout)
	defer cancel()
	start := at.Add(-f.cfg.ClockSkew)
	cons, err := f.js.OrderedConsumer(ctx, f.names.Stream(events.StreamEvents), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{f.names.UserFilter(userID)},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
	})
	if err != nil {
		return nil, false, 0, fmt.Errorf("events: replay consumer: %w", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, false, 0, fmt.Errorf("events: replay info: %w", err)
	}
	if info.NumPending == 0 {
		return nil, false, 0, nil
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, false, 0, fmt.Errorf("events: replay messages: %w", err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return nil, false, 0, fmt.Errorf("events: replay: %w", err)
		}
		env, perr := events.ParseEnvelope(msg.Data())
		if perr == nil {
			if found {
				out = append(out, env)
			} else if env.ID == lastID {
				found = true
			}
		}
		md, err := msg.Metadata()
		if err != nil || md.NumPending == 0 {
			if err == nil {
				to = md.Sequence.Stream
			}
			break
		}
	}
	if !found {
		return nil, false, 0, nil
	}
	return out, true, to, nil
}

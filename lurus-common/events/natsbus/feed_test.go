package natsbus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/eventid"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

func startFeed(t *testing.T, ne testenv.NATSEnv, cfg natsbus.FeedConfig) *natsbus.Feed {
	t.Helper()
	f := natsbus.NewFeed(ne.JS, ne.Names, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Error(err)
		}
	})
	select {
	case <-f.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("feed not ready")
	}
	return f
}

func publishUserEvent(t *testing.T, ne testenv.NATSEnv, user string, balance int64) events.Envelope {
	t.Helper()
	env, _ := publishUserEventSeq(t, ne, user, balance)
	return env
}

// publishUserEventSeq publishes a balance.changed and returns it with its
// stream sequence.
func publishUserEventSeq(t *testing.T, ne testenv.NATSEnv, user string, balance int64) (events.Envelope, uint64) {
	t.Helper()
	env, err := events.NewEnvelope(eventid.New(), events.TypeBalanceChanged, user, time.Now(), events.BalanceChanged{BalanceMicros: balance})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := natsbus.NewPublisher(ne.JS).Publish(context.Background(), ne.Names.UserSubject(user, env.Type), env)
	if err != nil {
		t.Fatal(err)
	}
	return env, ack.Sequence
}

func recv(t *testing.T, s *natsbus.Subscription) events.Envelope {
	t.Helper()
	select {
	case e, ok := <-s.C():
		if !ok {
			t.Fatalf("subscription closed: %v", s.Err())
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
	}
	return events.Envelope{}
}

func TestFeedDeliversOnlyOwnUsersEvents(t *testing.T) {
	ne := testenv.NATS(t)
	f := startFeed(t, ne, natsbus.FeedConfig{})
	ctx := context.Background()
	a1, err := f.Subscribe(ctx, "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := f.Subscribe(ctx, "alice", "")
	b, _ := f.Subscribe(ctx, "bob", "")
	sent := publishUserEvent(t, ne, "alice", 100)
	for _, s := range []*natsbus.Subscription{a1, a2} {
		if got := recv(t, s); got.ID != sent.ID || got.UserID != "alice" {
			t.Fatalf("got %+v", got)
		}
	}
	select {
	case e := <-b.C():
		t.Fatalf("bob received alice's event %+v", e)
	case <-time.After(200 * time.Millisecond):
	}
	if subs, users := f.Subscribers(); subs != 3 || users != 2 {
		t.Fatalf("subscribers = %d/%d", subs, users)
	}
	a1.Close()
	if subs, _ := f.Subscribers(); subs != 2 {
		t.Fatalf("after close: %d", subs)
	}
}

func TestFeedResumeFromLastEventID(t *testing.T) {
	ne := testenv.NATS(t)
	f := startFeed(t, ne, natsbus.FeedConfig{})
	var sent []events.Envelope
	for i := 0; i < 6; i++ {
		sent = append(sent, publishUserEvent(t, ne, "carol", int64(i)))
		publishUserEvent(t, ne, "dave", int64(i)) // noise from another user
	}
	s, err := f.Subscribe(context.Background(), "carol", sent[2].ID)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.Resumed {
		t.Fatal("not resumed")
	}
	if len(s.Replay) != 3 {
		t.Fatalf("replay has %d events, want 3", len(s.Replay))
	}
	for i, e := range s.Replay {
		if e.ID != sent[3+i].ID {
			t.Fatalf("replay[%d] = %s, want %s", i, e.ID, sent[3+i].ID)
		}
	}
	live := publishUserEvent(t, ne, "carol", 99)
	if got := recv(t, s); got.ID != live.ID {
		t.Fatalf("live event %s, want %s", got.ID, live.ID)
	}
}

// A resume's replay can read ahead of the live consumer (a busy feed
// lags behind the stream): the events the replay returned must not come
// again on C when the live consumer catches up with them. Found by the
// fault suite (scenario 12: 300 WebSocket clients resuming after a
// sync-service restart under load got thousands of events twice).
func TestFeedResumeDropsReplayedEventsALaggingFeedDelivers(t *testing.T) {
	ne := testenv.NATS(t)
	// Its live consumer never runs: the test delivers for it, late.
	f := natsbus.NewFeed(ne.JS, ne.Names, natsbus.FeedConfig{})
	var sent []events.Envelope
	var seqs []uint64
	for i := range 4 {
		env, seq := publishUserEventSeq(t, ne, "erin", int64(i))
		sent, seqs = append(sent, env), append(seqs, seq)
	}
	s, err := f.Subscribe(context.Background(), "erin", sent[1].ID)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.Resumed || len(s.Replay) != 2 || s.Replay[0].ID != sent[2].ID || s.Replay[1].ID != sent[3].ID {
		t.Fatalf("resumed %v, replay %v; want %s, %s", s.Resumed, s.Replay, sent[2].ID, sent[3].ID)
	}
	// The lagging live consumer now delivers everything from the start,
	// then a new event.
	for i, env := range sent {
		natsbus.Dispatch(f, "erin", env, seqs[i])
	}
	next, seq := publishUserEventSeq(t, ne, "erin", 99)
	natsbus.Dispatch(f, "erin", next, seq)
	if got := recv(t, s); got.ID != next.ID {
		t.Fatalf("live event %s, want only the new one %s (the others were replayed or precede the last event id)", got.ID, next.ID)
	}
}

func TestFeedResumeUnknownOrTooOld(t *testing.T) {
	ne := testenv.NATS(t)
	f := startFeed(t, ne, natsbus.FeedConfig{MaxAge: time.Hour})
	publishUserEvent(t, ne, "erin", 1)
	old := "01ARZ3NDEKTSV4RRFFQ69G5FAV" // a ULID from 2016
	for _, last := range []string{old, eventid.New(), "not-a-ulid"} {
		s, err := f.Subscribe(context.Background(), "erin", last)
		if err != nil {
			t.Fatal(err)
		}
		if s.Resumed || len(s.Replay) != 0 {
			t.Fatalf("last=%s: resumed=%v replay=%d", last, s.Resumed, len(s.Replay))
		}
		s.Close()
	}
}

func TestFeedDropsSlowSubscriber(t *testing.T) {
	ne := testenv.NATS(t)
	f := startFeed(t, ne, natsbus.FeedConfig{Buffer: 4})
	slow, _ := f.Subscribe(context.Background(), "frank", "")
	fast, _ := f.Subscribe(context.Background(), "frank", "")
	got := make(chan int, 100)
	go func() {
		for range fast.C() {
			got <- 1
		}
	}()
	for i := 0; i < 10; i++ {
		publishUserEvent(t, ne, "frank", int64(i))
	}
	select {
	case <-slow.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("slow subscriber not dropped")
	}
	if !errors.Is(slow.Err(), natsbus.ErrSlowSubscriber) {
		t.Fatalf("err = %v", slow.Err())
	}
	deadline := time.After(5 * time.Second)
	for n := 0; n < 10; n++ {
		select {
		case <-got:
		case <-deadline:
			t.Fatalf("fast subscriber got %d of 10", n)
		}
	}
}

func TestFeedEndsSubscriptionsOnStop(t *testing.T) {
	ne := testenv.NATS(t)
	f := natsbus.NewFeed(ne.JS, ne.Names, natsbus.FeedConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = f.Run(ctx); close(done) }()
	<-f.Ready()
	s, _ := f.Subscribe(context.Background(), "gina", "")
	cancel()
	<-done
	select {
	case <-s.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("subscription still open")
	}
	if !errors.Is(s.Err(), natsbus.ErrFeedClosed) {
		t.Fatalf("err = %v", s.Err())
	}
}

// TestFeedCapsReplaysInFlight: with MaxReplays replays running, a resume
// waits ReplayWait and fails with ErrReplayBusy; once one ends, resumes
// work again. A subscription without a last event id never waits.
func TestFeedCapsReplaysInFlight(t *testing.T) {
	ne := testenv.NATS(t)
	f := startFeed(t, ne, natsbus.FeedConfig{MaxReplays: 1, ReplayWait: 200 * time.Millisecond})
	first := publishUserEvent(t, ne, "gina", 1)
	publishUserEvent(t, ne, "gina", 2)
	release := natsbus.HoldReplaySlot(f)
	start := time.Now()
	if _, err := f.Subscribe(context.Background(), "gina", first.ID); !errors.Is(err, natsbus.ErrReplayBusy) {
		t.Fatalf("resume with every slot taken: %v, want ErrReplayBusy", err)
	}
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Errorf("refused after %s, before ReplayWait", waited)
	}
	if subs, _ := f.Subscribers(); subs != 0 {
		t.Errorf("a refused resume left %d subscriptions", subs)
	}
	plain, err := f.Subscribe(context.Background(), "gina", "")
	if err != nil {
		t.Fatalf("a subscription without resume waited for a replay slot: %v", err)
	}
	plain.Close()
	release()
	s, err := f.Subscribe(context.Background(), "gina", first.ID)
	if err != nil || !s.Resumed || len(s.Replay) != 1 {
		t.Fatalf("resume after a slot freed: %v (resumed=%v)", err, s != nil && s.Resumed)
	}
	s.Close()
}

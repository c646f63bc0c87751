package service

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/sync-service/internal/biz"
)

// frameKind is what the writer does with an outFrame.
type frameKind uint8

const (
	frameText frameKind = iota + 1 // an encoded protocol message
	framePong                      // a WebSocket pong control frame
)

// outFrame is one reply for the writer (kept small: every connection's
// control queue holds ControlQueue of them).
type outFrame struct {
	kind    frameKind
	msgType string // for frameText: the message type, for metrics
	data    []byte
}

// initial is what the writer sends before live events: replayed events, or
// a reply (the sync_state that replaces an impossible resume).
type initial struct {
	replay []events.Envelope
	frame  *outFrame
}

// errFlood ends the reader of a client that sends faster than allowed or
// whose replies back up.
var errFlood = errors.New("client message flood")

// session is one WebSocket connection. The reader goroutine only reads and
// queues replies; the writer goroutine is the only one writing to the
// socket, and the one that cleans up.
type session struct {
	h         *WS
	ws        *websocket.Conn
	sub       *natsbus.Subscription
	remove    func()
	userID    string
	keyID     string
	deviceID  string
	requestID string
	remote    string
	started   time.Time

	filter   atomic.Pointer[biz.TypeFilter]
	limiter  biz.Limiter // reader-only
	pingSlot uint8

	control    chan outFrame // reader → writer replies
	closeOnce  sync.Once
	closeReq   chan struct{} // closed by Close
	cause      atomic.Int32  // biz.CloseCause, set before closeReq closes
	readerDone chan struct{}

	// Set by the reader before readerDone closes.
	readErr       error
	peerCloseCode int

	// Writer-only.
	sentEvents  int
	sentReplies int
	closeCode   int
	disconnect  string
}

// Close implements biz.Session: it asks the writer to end the session.
func (s *session) Close(c biz.CloseCause) {
	s.closeOnce.Do(func() {
		s.cause.Store(int32(c))
		close(s.closeReq)
	})
}

// extendReadDeadline gives the client two ping intervals plus the pong wait
// from now: a connection that misses two pongs (and sends nothing) times out.
func (s *session) extendReadDeadline() {
	_ = s.ws.SetReadDeadline(time.Now().Add(2*s.h.cfg.PingInterval + s.h.cfg.PongWait))
}

// enqueue hands a reply to the writer without blocking; false means the
// queue is full (the client sends but does not read).
func (s *session) enqueue(f outFrame) bool {
	select {
	case s.control <- f:
		return true
	default:
		return false
	}
}

// readLoop reads client messages until the connection fails, the client
// closes, or it floods.
func (s *session) readLoop() {
	defer close(s.readerDone)
	for {
		typ, data, err := s.ws.ReadMessage()
		if err != nil {
			s.readErr = err
			return
		}
		s.extendReadDeadline()
		if !s.limiter.Allow(time.Now()) {
			s.readErr = errFlood
			return
		}
		if !s.handle(typ, data) {
			s.readErr = errFlood
			return
		}
	}
}

// handle answers one client message; false means the reply queue is full.
//
//go:noinline
func (s *session) handle(typ int, data []byte) bool {
	m := s.h.metrics
	if typ != websocket.TextMessage {
		m.ClientMessages.WithLabelValues("invalid").Inc()
		return s.reply(MsgError, EncodeError("", apperr.New(apperr.ReasonInvalidMessage, "only text messages are accepted")))
	}
	msg, err := ParseClientMessage(data)
	if err != nil {
		m.ClientMessages.WithLabelValues("invalid").Inc()
		return s.reply(MsgError, EncodeError(msg.ID, err))
	}
	m.ClientMessages.WithLabelValues(msg.Type).Inc()
	switch msg.Type {
	case MsgPing:
		return s.reply(MsgPong, EncodePong(msg.ID, time.Now()))
	case MsgSubscribe:
		f, err := biz.NewTypeFilter(msg.Types)
		if err != nil {
			return s.reply(MsgError, EncodeError(msg.ID, err))
		}
		s.filter.Store(&f)
		return true
	default: // MsgSyncRequest
		ctx, cancel := context.WithTimeout(context.Background(), s.h.cfg.SyncTimeout)
		defer cancel()
		st, err := s.h.state.SyncState(ctx, s.userID)
		if err != nil {
			if apperr.KindOf(err) == apperr.KindInternal {
				s.h.log.ErrorContext(ctx, "sync state", "err", err, "user_id", s.userID)
			}
			return s.reply(MsgError, EncodeError(msg.ID, err))
		}
		return s.reply(MsgSyncState, EncodeSyncState(msg.ID, StateRequested, st))
	}
}

func (s *session) reply(msgType string, data []byte) bool {
	return s.enqueue(outFrame{kind: frameText, msgType: msgType, data: data})
}

// writeLoop sends the initial frames, then live events, replies and pings,
// until the session ends; then it closes the socket and cleans up. It is
// split in small frames on purpose: an idle connection's goroutine must fit
// the runtime's smallest stack.
func (s *session) writeLoop(first initial) {
	if s.sendInitial(first) {
		s.serve()
	}
	s.finish()
}

// serve is the writer's select loop.
func (s *session) serve() {
	evs := s.sub.C()
	tick := s.h.pings.wait(s.pingSlot)
	for {
		select {
		case env, ok := <-evs:
			if !ok {
				s.subscriptionEnded()
				return
			}
			if !s.writeEvent(&env, true) {
				return
			}
		case f := <-s.control:
			if !s.write(f) {
				return
			}
		case <-tick:
			if !s.ping() {
				return
			}
			tick = s.h.pings.wait(s.pingSlot)
		case <-s.closeReq:
			s.closeRequested()
			return
		case <-s.readerDone:
			s.readerEnded()
			return
		}
	}
}

// sendInitial writes the replay or the state that precede live events.
//
//go:noinline
func (s *session) sendInitial(first initial) bool {
	for i := range first.replay {
		if !s.writeEvent(&first.replay[i], false) {
			return false
		}
	}
	return first.frame == nil || s.write(*first.frame)
}

// writeEvent sends a user event unless the filter excludes it; false means
// the session must end (already recorded). live marks events whose fan-out
// latency is measured (not replayed ones).
//
//go:noinline
func (s *session) writeEvent(env *events.Envelope, live bool) bool {
	if !s.filter.Load().Wants(env.Type) {
		return true
	}
	_ = s.ws.SetWriteDeadline(time.Now().Add(s.h.cfg.WriteTimeout))
	if err := s.ws.WriteMessage(websocket.TextMessage, EncodeEvent(*env)); err != nil {
		s.writeFailed(err)
		return false
	}
	s.sentEvents++
	s.h.metrics.MessagesOut.WithLabelValues(MsgEvent).Inc()
	if live && !env.OccurredAt.IsZero() {
		s.h.metrics.FanoutLatency.Observe(time.Since(env.OccurredAt).Seconds())
	}
	return true
}

// write sends one reply; false means the session must end (already
// recorded).
//
//go:noinline
func (s *session) write(f outFrame) bool {
	var err error
	switch f.kind {
	case framePong:
		err = s.ws.WriteControl(websocket.PongMessage, f.data, time.Now().Add(s.h.cfg.WriteTimeout))
	default:
		_ = s.ws.SetWriteDeadline(time.Now().Add(s.h.cfg.WriteTimeout))
		if err = s.ws.WriteMessage(websocket.TextMessage, f.data); err == nil {
			s.sentReplies++
			s.h.metrics.MessagesOut.WithLabelValues(f.msgType).Inc()
		}
	}
	if err != nil {
		s.writeFailed(err)
		return false
	}
	return true
}

// ping sends a WebSocket ping; false means the session must end.
//
//go:noinline
func (s *session) ping() bool {
	if err := s.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.h.cfg.WriteTimeout)); err != nil {
		s.writeFailed(err)
		return false
	}
	return true
}

// writeFailed ends a session whose socket does not take writes. A write that
// timed out while the feed dropped the subscription is a slow client.
//
//go:noinline
func (s *session) writeFailed(err error) {
	if errors.Is(s.sub.Err(), natsbus.ErrSlowSubscriber) || isTimeout(err) {
		s.slow()
		return
	}
	s.disconnect = DisconnectError
	if s.isReaderDone() {
		s.disconnect = s.readerCause()
	}
}

func (s *session) slow() {
	s.h.metrics.SlowDrops.Inc()
	s.disconnect = DisconnectSlow
	s.sendClose(CloseSlowConsumer, "slow consumer: reconnect with last_event_id", 0)
}

// subscriptionEnded handles the feed closing this session's subscription.
//
//go:noinline
func (s *session) subscriptionEnded() {
	switch err := s.sub.Err(); {
	case errors.Is(err, natsbus.ErrSlowSubscriber):
		s.slow()
	case errors.Is(err, natsbus.ErrFeedClosed):
		s.disconnect = DisconnectShutdown
		s.sendClose(websocket.CloseGoingAway, "server is shutting down", s.h.cfg.CloseGrace)
	default:
		// Closed by this session's own context: the reader ended.
		<-s.readerDone
		s.readerEnded()
	}
}

// closeRequested handles Close from the session registry.
//
//go:noinline
func (s *session) closeRequested() {
	switch biz.CloseCause(s.cause.Load()) {
	case biz.CauseShutdown:
		s.drain()
		s.disconnect = DisconnectShutdown
		s.sendClose(websocket.CloseGoingAway, "server is shutting down", s.h.cfg.CloseGrace)
	default:
		s.disconnect = DisconnectRevoked
		s.sendClose(CloseCredentialsChanged, "credentials changed: reconnect", s.h.cfg.CloseGrace)
	}
}

// drain writes the live events already queued, so a clean shutdown loses
// nothing a client would not get back by resuming anyway.
func (s *session) drain() {
	for {
		select {
		case env, ok := <-s.sub.C():
			if !ok || !s.writeEvent(&env, true) {
				return
			}
		default:
			return
		}
	}
}

// readerEnded handles the reader's end: the client closed (its close frame
// is echoed), timed out, flooded, or the connection broke.
//
//go:noinline
func (s *session) readerEnded() {
	s.disconnect = s.readerCause()
	var ce *websocket.CloseError
	switch {
	case errors.Is(s.readErr, errFlood):
		s.sendClose(websocket.ClosePolicyViolation, "too many messages", s.h.cfg.CloseGrace)
	case errors.Is(s.readErr, websocket.ErrReadLimit):
		s.closeCode = websocket.CloseMessageTooBig // gorilla has sent it
	case errors.As(s.readErr, &ce):
		// Echo the client's close frame (RFC 6455 §5.5.1). 1006 means the
		// connection broke without one: nothing to answer.
		switch code := ce.Code; code {
		case websocket.CloseAbnormalClosure, websocket.CloseTLSHandshake:
		case websocket.CloseNoStatusReceived:
			s.sendClose(websocket.CloseNormalClosure, "", 0)
		default:
			s.sendClose(code, "", 0)
		}
	}
}

func (s *session) readerCause() string {
	var ne net.Error
	switch {
	case errors.Is(s.readErr, errFlood), errors.Is(s.readErr, websocket.ErrReadLimit):
		return DisconnectFlood
	case errors.As(s.readErr, &ne) && ne.Timeout():
		return DisconnectTimeout
	default:
		return DisconnectClient
	}
}

func (s *session) isReaderDone() bool {
	select {
	case <-s.readerDone:
		return true
	default:
		return false
	}
}

// sendClose writes a close frame and waits up to grace for the client's
// close frame (the reader ends on it), so the client reads the code before
// the TCP connection goes away.
func (s *session) sendClose(code int, text string, grace time.Duration) {
	s.closeCode = code
	deadline := time.Now().Add(min(s.h.cfg.WriteTimeout, time.Second))
	if err := s.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), deadline); err != nil {
		return
	}
	if grace <= 0 {
		return
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-s.readerDone:
	case <-t.C:
	}
}

// finish closes the socket, waits for the reader, releases the
// subscription and the registry entry, and logs the session.
func (s *session) finish() {
	_ = s.ws.Close()
	<-s.readerDone
	s.sub.Close()
	s.remove()
	if s.disconnect == "" {
		s.disconnect = DisconnectError
	}
	s.h.metrics.Disconnects.WithLabelValues(s.disconnect).Inc()
	s.h.log.Info("ws session",
		"request_id", s.requestID, "user_id", s.userID, "key_id", s.keyID, "device_id", s.deviceID,
		"remote", s.remote, "duration_ms", time.Since(s.started).Milliseconds(),
		"cause", s.disconnect, "close_code", s.closeCode,
		"events_sent", s.sentEvents, "replies_sent", s.sentReplies)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

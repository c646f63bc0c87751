package service

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/authguard"
	"github.com/lurus-switch/lurus-switch/lurus-common/clientip"
	"github.com/lurus-switch/lurus-switch/lurus-common/connlimit"
	"github.com/lurus-switch/lurus-switch/lurus-common/edge"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/sync-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/sync-service/internal/conf"
)

// EventSource subscribes to one user's events; natsbus.Feed implements it.
type EventSource interface {
	Subscribe(ctx context.Context, userID, lastEventID string) (*natsbus.Subscription, error)
}

// StateSource reads a user's full state; data.Billing implements it.
type StateSource interface {
	SyncState(ctx context.Context, userID string) (internalapi.SyncState, error)
}

// maxLastEventIDLen bounds ?last_event_id (a ULID is 26 characters).
const maxLastEventIDLen = 64

// WS serves GET /ws/sync.
type WS struct {
	keys     Keys
	tickets  *biz.Tickets
	origins  *biz.OriginPolicy
	sessions *biz.SessionRegistry
	feed     EventSource
	state    StateSource
	metrics  *Metrics
	log      *slog.Logger
	addr     clientip.Resolver
	guard    *authguard.Guard
	cfg      conf.WS
	// perUser and perIP cap open connections (ws.max_per_user,
	// ws.max_per_ip).
	perUser, perIP *connlimit.Limiter

	upgrader websocket.Upgrader
	pings    *pingWheel
}

// WSDeps are what WS needs.
type WSDeps struct {
	Keys     Keys
	Tickets  *biz.Tickets
	Origins  *biz.OriginPolicy
	Sessions *biz.SessionRegistry
	Feed     EventSource
	State    StateSource
	Metrics  *Metrics
	Log      *slog.Logger
	Addr     clientip.Resolver
	// Guard refuses client addresses with too many failed
	// authentications before their credentials are looked up.
	Guard *authguard.Guard
}

// NewWS returns the WebSocket handler.
func NewWS(d WSDeps, cfg conf.WS) *WS {
	h := &WS{
		keys: d.Keys, tickets: d.Tickets, origins: d.Origins, sessions: d.Sessions, feed: d.Feed, state: d.State,
		metrics: d.Metrics, log: d.Log, addr: d.Addr, guard: d.Guard, cfg: cfg, pings: newPingWheel(),
		perUser: connlimit.New(cfg.MaxPerUser), perIP: connlimit.New(cfg.MaxPerIP),
	}
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: cfg.HandshakeTimeout,
		ReadBufferSize:   cfg.ReadBufferBytes,
		WriteBufferSize:  cfg.WriteBufferBytes,
		// Write buffers are taken for one message and given back, so an
		// idle connection holds none (the bulk of per-connection memory).
		WriteBufferPool: &sync.Pool{},
		// Origin is checked before the upgrade, together with the
		// credentials (see authenticate).
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			edge.WriteJSON(w, status, apperr.Body{Error: apperr.BodyError{Reason: string(apperr.ReasonInvalidArgument), Message: reason.Error()}})
		},
	}
	return h
}

// Run sends the sessions' pings (one timer for all of them) until ctx
// ends; the server runs it for its whole life.
func (h *WS) Run(ctx context.Context) { h.pings.run(ctx, h.cfg.PingInterval) }

// principal is who a connection belongs to.
type principal struct {
	userID, keyID string
}

// ServeHTTP checks everything that can be refused with a plain HTTP answer
// (device id, parameters, origin, credentials, capacity, the subscription),
// then upgrades and hands the connection to its two goroutines. The handler
// returns right away, so net/http's per-request buffers are freed.
func (h *WS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		edge.WriteError(w, r, apperr.New(apperr.ReasonInvalidArgument, "GET /ws/sync expects a WebSocket upgrade"))
		return
	}
	q := r.URL.Query()
	deviceID := q.Get("device_id")
	if err := biz.CheckDeviceID(deviceID); err != nil {
		edge.WriteError(w, r, err)
		return
	}
	lastID := q.Get("last_event_id")
	if len(lastID) > maxLastEventIDLen {
		edge.WriteError(w, r, apperr.New(apperr.ReasonInvalidArgument, "last_event_id is too long"))
		return
	}
	var types []string
	if v := q.Get("types"); v != "" {
		types = strings.Split(v, ",")
	}
	filter, err := biz.NewTypeFilter(types)
	if err != nil {
		edge.WriteError(w, r, apperr.New(apperr.ReasonInvalidArgument, apperr.From(err).Message))
		return
	}
	client := h.addr.FromRequest(r)
	if err := h.guard.Check(client); err != nil {
		edge.WriteError(w, r, err)
		return
	}
	who, err := h.authenticate(r, client)
	h.guard.Observe(client, err)
	if err != nil {
		countAuthFailure(h.metrics, err)
		edge.WriteError(w, r, err)
		return
	}
	releaseSlots, full := h.takeSlots(who.userID, client.String())
	if full != "" {
		h.refuseFull(w, r, full)
		return
	}

	s := &session{
		h: h, userID: who.userID, keyID: who.keyID, deviceID: deviceID, requestID: edge.RequestID(r.Context()),
		remote:  client.String(),
		control: make(chan outFrame, h.cfg.ControlQueue), closeReq: make(chan struct{}), readerDone: make(chan struct{}),
	}
	s.filter.Store(&filter)
	s.limiter = biz.NewLimiter(h.cfg.MessageRate, h.cfg.MessageBurst)
	s.pingSlot = h.pings.assign()
	leave, err := h.sessions.Add(who.userID, who.keyID, s)
	if err != nil {
		releaseSlots()
		edge.WriteError(w, r, err)
		return
	}
	remove := func() { leave(); releaseSlots() }
	s.remove = remove
	// The subscription outlives the request: it ends by Close when the
	// session finishes, not with a context (a cancelable one would also
	// cost every idle connection a context and its registration).
	sub, err := h.feed.Subscribe(context.Background(), who.userID, lastID)
	if err != nil {
		remove()
		switch {
		case errors.Is(err, natsbus.ErrFeedClosed):
			err = apperr.New(apperr.ReasonShuttingDown, "server is shutting down")
		case errors.Is(err, natsbus.ErrReplayBusy):
			h.metrics.RateLimited.WithLabelValues("process", "resumes").Inc()
			err = apperr.Wrap(err, apperr.ReasonUnavailable, "too many resumes in progress; retry shortly").WithRetryAfter(time.Second)
		case lastID != "":
			// The replay failed: it timed out, the live events arriving
			// meanwhile overflowed its buffer, or JetStream did not
			// answer (typically a reconnect burst after a restart). Like
			// the max_resumes refusal, say when to retry the same resume:
			// without Retry-After clients back off exponentially. A
			// sync_state instead is not safe: event ids of one user
			// minted within a millisecond need not sort in publication
			// order, so a client could not tell which events the state
			// already holds.
			h.log.WarnContext(r.Context(), "resume failed", "err", err, "user_id", who.userID)
			h.metrics.Resumes.WithLabelValues("failed").Inc()
			err = apperr.Wrap(err, apperr.ReasonUnavailable, "resume could not be served now; retry shortly with the same last_event_id").WithRetryAfter(time.Second)
		default:
			h.log.ErrorContext(r.Context(), "feed subscribe", "err", err, "user_id", who.userID)
			err = apperr.Wrap(err, apperr.ReasonDependencyDown, "event stream unavailable")
		}
		edge.WriteError(w, r, err)
		return
	}
	s.sub = sub
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// The upgrader has answered the client.
		sub.Close()
		remove()
		return
	}
	s.ws = ws
	s.started = time.Now()
	first := h.initialFrames(r.Context(), s, lastID)
	ws.SetReadLimit(h.cfg.ReadLimitBytes)
	s.extendReadDeadline()
	ws.SetPongHandler(func(string) error { s.extendReadDeadline(); return nil })
	ws.SetPingHandler(func(data string) error {
		s.extendReadDeadline()
		s.enqueue(outFrame{kind: framePong, data: []byte(data)})
		return nil
	})
	ws.SetCloseHandler(func(code int, text string) error {
		s.peerCloseCode = code
		return nil
	})
	go s.writeLoop(first)
	go s.readLoop()
}

// authenticate applies the origin rule and the credentials: an API key in a
// header (Origin, when sent, must be allowed), or a ticket (Origin required
// and allowed: tickets are the browser flow). Either way the key is
// verified and authorized now, from this client's address.
func (h *WS) authenticate(r *http.Request, client netip.Addr) (principal, error) {
	origin := r.Header.Get("Origin")
	if key := edge.APIKey(r.Header.Get); key != "" {
		if err := h.origins.Check(origin, true); err != nil {
			return principal{}, err
		}
		info, err := h.keys.Authenticate(r.Context(), key, client)
		if err != nil {
			return principal{}, err
		}
		return principal{userID: info.UserID, keyID: info.KeyID}, nil
	}
	ticket := r.URL.Query().Get("ticket")
	if ticket == "" {
		return principal{}, apperr.New(apperr.ReasonMissingCredentials, "an API key header or a ticket is required")
	}
	if err := h.origins.Check(origin, false); err != nil {
		return principal{}, err
	}
	info, err := h.tickets.Redeem(r.Context(), ticket, client)
	if err != nil {
		return principal{}, err
	}
	return principal{userID: info.UserID, keyID: info.KeyID}, nil
}

// takeSlots takes a connection slot for userID and for the client
// address; full names the cap that refused ("" when both were free).
func (h *WS) takeSlots(userID, client string) (release func(), full string) {
	relUser, ok := h.perUser.Acquire(userID)
	if !ok {
		h.metrics.RateLimited.WithLabelValues("user", "ws_connections").Inc()
		return nil, "too many connections for this user"
	}
	relIP, ok := h.perIP.Acquire(client)
	if !ok {
		relUser()
		h.metrics.RateLimited.WithLabelValues("ip", "ws_connections").Inc()
		return nil, "too many connections from this address"
	}
	return func() { relIP(); relUser() }, ""
}

// refuseFull accepts the upgrade and closes the socket at once with
// CloseTooManyConnections and reason: a browser's WebSocket API shows a
// refused upgrade only as a bare error, but it shows a close code and
// reason. The client's close frame is awaited for at most CloseGrace.
func (h *WS) refuseFull(w http.ResponseWriter, r *http.Request, reason string) {
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered the client
	}
	go func() {
		defer ws.Close()
		deadline := time.Now().Add(min(h.cfg.WriteTimeout, time.Second))
		if ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(CloseTooManyConnections, reason), deadline) != nil {
			return
		}
		_ = ws.SetReadDeadline(time.Now().Add(h.cfg.CloseGrace))
		for {
			if _, _, err := ws.NextReader(); err != nil {
				return
			}
		}
	}()
}

// initialFrames is what the writer sends before live events: the replay of
// a resume, or, when a resume is not possible, the full state.
func (h *WS) initialFrames(ctx context.Context, s *session, lastID string) initial {
	if lastID == "" {
		return initial{}
	}
	sub := s.sub
	if sub.Resumed && len(sub.Replay) <= h.cfg.MaxReplay {
		h.metrics.Resumes.WithLabelValues("replayed").Inc()
		out := initial{replay: sub.Replay}
		sub.Replay = nil
		return out
	}
	sub.Replay = nil
	h.metrics.Resumes.WithLabelValues("sync_state").Inc()
	ctx, cancel := context.WithTimeout(ctx, h.cfg.SyncTimeout)
	defer cancel()
	st, err := h.state.SyncState(ctx, s.userID)
	if err != nil {
		h.log.WarnContext(ctx, "sync state for resume", "err", err, "user_id", s.userID)
		return initial{frame: &outFrame{kind: frameText, msgType: MsgError, data: EncodeError("", err)}}
	}
	return initial{frame: &outFrame{kind: frameText, msgType: MsgSyncState, data: EncodeSyncState("", StateResumeUnavailable, st)}}
}

package biz

import (
	"context"
	"sync"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// CloseCause says why the server ends a session; the transport maps it to a
// close code the client can act on.
type CloseCause int

// Close causes.
const (
	// CauseShutdown: the server is stopping; reconnect (to another replica)
	// with last_event_id.
	CauseShutdown CloseCause = iota + 1
	// CauseCredentialsChanged: the key or user changed (revoked, disabled,
	// edited); reconnect, which authenticates again.
	CauseCredentialsChanged
)

// Session is an open connection as the hub sees it. Close asks it to end
// with cause; it must not block.
type Session interface {
	Close(cause CloseCause)
}

type hubEntry struct {
	keyID string
	s     Session
}

// Hub is the registry of this replica's open sessions by user. Fan-out of
// events does not go through it (each session has its own feed
// subscription); the hub is what key.changed, shutdown and the connection
// gauges act on.
type Hub struct {
	mu     sync.Mutex
	users  map[string]map[*hubEntry]struct{}
	n      int
	closed bool
	empty  chan struct{} // closed when closed && n == 0
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{users: map[string]map[*hubEntry]struct{}{}, empty: make(chan struct{})}
}

// Add registers s for userID (authenticated with keyID, "" for none) and
// returns the function that removes it. After Shutdown it refuses with
// SHUTTING_DOWN.
func (h *Hub) Add(userID, keyID string, s Session) (remove func(), err error) {
	e := &hubEntry{keyID: keyID, s: s}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, apperr.New(apperr.ReasonShuttingDown, "server is shutting down")
	}
	set := h.users[userID]
	if set == nil {
		set = map[*hubEntry]struct{}{}
		h.users[userID] = set
	}
	set[e] = struct{}{}
	h.n++
	var once sync.Once
	return func() { once.Do(func() { h.remove(userID, e) }) }, nil
}

func (h *Hub) remove(userID string, e *hubEntry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.users[userID]
	if _, ok := set[e]; !ok {
		return
	}
	delete(set, e)
	if len(set) == 0 {
		delete(h.users, userID)
	}
	h.n--
	if h.closed && h.n == 0 {
		close(h.empty)
	}
}

// CloseKey ends the sessions of userID authenticated with keyID, or all of
// userID's sessions when keyID is empty, and returns how many it asked to
// close. Without userID it looks for keyID among every user's sessions.
func (h *Hub) CloseKey(keyID, userID string) int {
	if keyID == "" && userID == "" {
		return 0
	}
	h.mu.Lock()
	var victims []Session
	collect := func(set map[*hubEntry]struct{}) {
		for e := range set {
			if keyID == "" || e.keyID == keyID {
				victims = append(victims, e.s)
			}
		}
	}
	if userID != "" {
		collect(h.users[userID])
	} else {
		for _, set := range h.users {
			collect(set)
		}
	}
	h.mu.Unlock()
	for _, s := range victims {
		s.Close(CauseCredentialsChanged)
	}
	return len(victims)
}

// Shutdown refuses new sessions, asks every open one to close, and waits
// until all have removed themselves or ctx ends.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		if h.n == 0 {
			close(h.empty)
		}
	}
	var all []Session
	for _, set := range h.users {
		for e := range set {
			all = append(all, e.s)
		}
	}
	h.mu.Unlock()
	for _, s := range all {
		s.Close(CauseShutdown)
	}
	select {
	case <-h.empty:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Counts returns the open sessions and the distinct users they belong to.
func (h *Hub) Counts() (sessions, users int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n, len(h.users)
}

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

// Session is an open connection as the registry sees it. Close asks it to
// end with cause; it must not block.
type Session interface {
	Close(cause CloseCause)
}

type registryEntry struct {
	keyID string
	s     Session
}

// SessionRegistry is the registry of this replica's open sessions by
// user. Fan-out of events does not go through it (each session has its own
// feed subscription); the registry is what key.changed, shutdown and the
// connection gauges act on.
type SessionRegistry struct {
	mu     sync.Mutex
	users  map[string]map[*registryEntry]struct{}
	n      int
	closed bool
	empty  chan struct{} // closed when closed && n == 0
}

// NewSessionRegistry returns an empty registry.
func NewSessionRegistry() *SessionRegistry {
	return &SessionRegistry{users: map[string]map[*registryEntry]struct{}{}, empty: make(chan struct{})}
}

// Add registers s for userID (authenticated with keyID, "" for none) and
// returns the function that removes it. After Shutdown it refuses with
// SHUTTING_DOWN.
func (r *SessionRegistry) Add(userID, keyID string, s Session) (remove func(), err error) {
	e := &registryEntry{keyID: keyID, s: s}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, apperr.New(apperr.ReasonShuttingDown, "server is shutting down")
	}
	set := r.users[userID]
	if set == nil {
		set = map[*registryEntry]struct{}{}
		r.users[userID] = set
	}
	set[e] = struct{}{}
	r.n++
	var once sync.Once
	return func() { once.Do(func() { r.remove(userID, e) }) }, nil
}

func (r *SessionRegistry) remove(userID string, e *registryEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := r.users[userID]
	if _, ok := set[e]; !ok {
		return
	}
	delete(set, e)
	if len(set) == 0 {
		delete(r.users, userID)
	}
	r.n--
	if r.closed && r.n == 0 {
		close(r.empty)
	}
}

// CloseKey ends the sessions of userID authenticated with keyID, or all of
// userID's sessions when keyID is empty, and returns how many it asked to
// close. Without userID it looks for keyID among every user's sessions.
func (r *SessionRegistry) CloseKey(keyID, userID string) int {
	if keyID == "" && userID == "" {
		return 0
	}
	r.mu.Lock()
	var victims []Session
	collect := func(set map[*registryEntry]struct{}) {
		for e := range set {
			if keyID == "" || e.keyID == keyID {
				victims = append(victims, e.s)
			}
		}
	}
	if userID != "" {
		collect(r.users[userID])
	} else {
		for _, set := range r.users {
			collect(set)
		}
	}
	r.mu.Unlock()
	for _, s := range victims {
		s.Close(CauseCredentialsChanged)
	}
	return len(victims)
}

// Shutdown refuses new sessions, asks every open one to close, and waits
// until all have removed themselves or ctx ends.
func (r *SessionRegistry) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		if r.n == 0 {
			close(r.empty)
		}
	}
	var all []Session
	for _, set := range r.users {
		for e := range set {
			all = append(all, e.s)
		}
	}
	r.mu.Unlock()
	for _, s := range all {
		s.Close(CauseShutdown)
	}
	select {
	case <-r.empty:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Counts returns the open sessions and the distinct users they belong to.
func (r *SessionRegistry) Counts() (sessions, users int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n, len(r.users)
}

package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// syncClient is one device following its user's balance over
// sync-service's WebSocket as doc/client-sync-api.md tells a client to:
// the first connection asks for the state (sync_request); every later one
// resumes with last_event_id; a close is followed by a reconnect after a
// full-jitter exponential backoff (0.5 s doubling), or after Retry-After
// on a 503. It is one goroutine: gorilla answers the server's pings from
// the reading goroutine, and the one message the client writes is sent
// right after the upgrade, before reading.
//
// It also checks what the protocol promises: no event twice, and each
// balance.changed continuing the previous balance (balance_micros =
// previous + delta_micros), so a missed event shows as a break.
type syncClient struct {
	wsURL, key, device string
	userID             string

	mu          sync.Mutex
	lastEventID string
	// floor is the last_event_id of the newest sync_state: events at or
	// before it are already in that state.
	floor     string
	balance   int64
	known     bool // balance holds a state's or an event's value
	seen      map[string]bool
	events    int // balance.changed applied
	dups      int
	dupInfo   []string // the first few duplicates: id, session, message number
	msgs      int      // messages of the current session
	breaks    []string
	states    map[string]int // sync_state by reason
	opens     int
	resumes   int // opens with last_event_id
	refusals  map[int]int
	connected bool
}

// syncFleet is the scenario's clients, one goroutine each.
type syncFleet struct {
	clients []*syncClient
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	open    atomic.Int64
}

// startSyncFleet connects perUser devices of every tenant to the
// sync-service at base (http://…).
func startSyncFleet(base string, tenants []tenant, perUser int) *syncFleet {
	ctx, cancel := context.WithCancel(context.Background())
	f := &syncFleet{cancel: cancel}
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/ws/sync"
	for u, tn := range tenants {
		for d := range perUser {
			c := &syncClient{wsURL: wsURL, key: tn.Key, userID: tn.UserID, device: fmt.Sprintf("chaos-%d-%d", u, d),
				seen: map[string]bool{}, states: map[string]int{}, refusals: map[int]int{}}
			f.clients = append(f.clients, c)
			f.wg.Add(1)
			go func() { defer f.wg.Done(); c.run(ctx, &f.open) }()
		}
	}
	return f
}

func (f *syncFleet) stop() { f.cancel(); f.wg.Wait() }

// ready reports whether every client is connected, has opened at least
// opens connections and knows its balance.
func (f *syncFleet) ready(opens int) bool {
	for _, c := range f.clients {
		c.mu.Lock()
		ok := c.connected && c.opens >= opens && c.known
		c.mu.Unlock()
		if !ok {
			return false
		}
	}
	return true
}

// wait waits until ready(opens) holds; past within it fails the test
// with what the clients saw.
func (f *syncFleet) wait(t testing.TB, within time.Duration, what string, opens int) {
	t.Helper()
	for deadline := time.Now().Add(within); !f.ready(opens); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			st := f.stats()
			n := 0
			for _, c := range f.clients {
				c.mu.Lock()
				if c.connected && c.opens >= opens && c.known {
					n++
				}
				c.mu.Unlock()
			}
			t.Fatalf("timed out after %s waiting: %s: %d of %d ready, opens %d, resumes %d, upgrade refusals %v, sync_states %v",
				within, what, n, len(f.clients), st.opens, st.resumes, st.refusals, st.states)
		}
	}
}

// run connects and reconnects until ctx ends.
func (c *syncClient) run(ctx context.Context, open *atomic.Int64) {
	attempt := 0
	for ctx.Err() == nil {
		wait := c.session(ctx, open, &attempt)
		if ctx.Err() != nil {
			return
		}
		if wait == 0 {
			wait = rand.N(min(30*time.Second, 500*time.Millisecond<<min(attempt, 6))) + 10*time.Millisecond
			attempt++
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
	}
}

// session runs one connection and returns how long to wait before the
// next: 0 for the backoff, Retry-After on a 503, at once after 4008/4001.
func (c *syncClient) session(ctx context.Context, open *atomic.Int64, attempt *int) time.Duration {
	q := url.Values{"device_id": {c.device}}
	c.mu.Lock()
	resume := c.lastEventID
	c.mu.Unlock()
	if resume != "" {
		q.Set("last_event_id", resume)
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, resp, err := d.DialContext(ctx, c.wsURL+"?"+q.Encode(), http.Header{"Authorization": {"Bearer " + c.key}})
	if err != nil {
		if resp != nil {
			c.mu.Lock()
			c.refusals[resp.StatusCode]++
			c.mu.Unlock()
			if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && resp.StatusCode == http.StatusServiceUnavailable {
				return time.Duration(s)*time.Second + rand.N(250*time.Millisecond)
			}
		}
		return 0
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if resume == "" {
		if err := conn.WriteJSON(map[string]string{"type": "sync_request", "id": "first"}); err != nil {
			return 0
		}
	}
	*attempt = 0
	c.mu.Lock()
	c.opens++
	c.msgs = 0
	if resume != "" {
		c.resumes++
	}
	c.connected = true
	c.mu.Unlock()
	open.Add(1)
	defer func() {
		open.Add(-1)
		c.mu.Lock()
		c.connected = false
		c.mu.Unlock()
	}()
	for {
		_ = conn.SetReadDeadline(time.Now().Add(75 * time.Second))
		var m struct {
			Type   string          `json:"type"`
			Reason string          `json:"reason"`
			State  json.RawMessage `json:"state"`
			Event  *struct {
				ID   string          `json:"id"`
				Type string          `json:"type"`
				Data json.RawMessage `json:"data"`
			} `json:"event"`
		}
		if err := conn.ReadJSON(&m); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && (ce.Code == 4008 || ce.Code == 4001) {
				return 10 * time.Millisecond // reconnect at once
			}
			return 0
		}
		switch {
		case m.Type == "event" && m.Event != nil:
			c.apply(m.Event.ID, m.Event.Type, m.Event.Data)
		case m.Type == "sync_state":
			c.state(m.Reason, m.State)
		}
	}
}

// apply takes one event.
func (c *syncClient) apply(id, typ string, data json.RawMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs++
	if c.seen[id] {
		c.dups++
		if len(c.dupInfo) < 3 {
			c.dupInfo = append(c.dupInfo, fmt.Sprintf("%s %s open %d (resume %v) message %d", id, typ, c.opens, c.lastEventID != "", c.msgs))
		}
		return
	}
	c.seen[id] = true
	if c.floor != "" && id <= c.floor { // ULIDs sort by time: already in the state
		return
	}
	c.lastEventID = id
	if typ != "balance.changed" {
		return
	}
	var b struct {
		Balance int64 `json:"balance_micros"`
		Delta   int64 `json:"delta_micros"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		c.breaks = append(c.breaks, fmt.Sprintf("event %s: %v", id, err))
		return
	}
	if c.known && b.Balance != c.balance+b.Delta {
		c.breaks = append(c.breaks, fmt.Sprintf("event %s: balance %d after %d%+d", id, b.Balance, c.balance, b.Delta))
	}
	c.balance, c.known = b.Balance, true
	c.events++
}

// state takes a sync_state as the truth.
func (c *syncClient) state(reason string, raw json.RawMessage) {
	var st struct {
		Balance     int64  `json:"balance_micros"`
		LastEventID string `json:"last_event_id"`
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.states[reason]++
	if err := json.Unmarshal(raw, &st); err != nil {
		c.breaks = append(c.breaks, fmt.Sprintf("sync_state: %v", err))
		return
	}
	c.balance, c.known = st.Balance, true
	if st.LastEventID != "" {
		c.lastEventID, c.floor = st.LastEventID, st.LastEventID
	}
}

// minEvents is the fewest balance changes any client applied.
func (f *syncFleet) minEvents() int {
	n := -1
	for _, c := range f.clients {
		c.mu.Lock()
		if n < 0 || c.events < n {
			n = c.events
		}
		c.mu.Unlock()
	}
	return n
}

// differing lists the clients whose balance is not want[user].
func (f *syncFleet) differing(want map[string]int64) []string {
	var out []string
	for _, c := range f.clients {
		c.mu.Lock()
		if !c.known || c.balance != want[c.userID] {
			out = append(out, fmt.Sprintf("%s of %s: %d (known %v), postgres %d", c.device, c.userID, c.balance, c.known, want[c.userID]))
		}
		c.mu.Unlock()
	}
	return out
}

// fleetStats sums what the clients saw.
type fleetStats struct {
	events, dups, opens, resumes int
	breaks, dupInfo              []string
	states                       map[string]int
	refusals                     map[int]int
}

func (f *syncFleet) stats() fleetStats {
	st := fleetStats{states: map[string]int{}, refusals: map[int]int{}}
	for _, c := range f.clients {
		c.mu.Lock()
		st.events += c.events
		st.dups += c.dups
		st.opens += c.opens
		st.resumes += c.resumes
		st.breaks = append(st.breaks, c.breaks...)
		st.dupInfo = append(st.dupInfo, c.dupInfo...)
		for k, v := range c.states {
			st.states[k] += v
		}
		for k, v := range c.refusals {
			st.refusals[k] += v
		}
		c.mu.Unlock()
	}
	return st
}

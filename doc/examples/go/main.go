// Command sync-client is the Go example of doc/client-sync-api.md: it
// follows a user's live balance and quota events over sync-service's
// WebSocket, reconnecting with backoff and resuming with last_event_id so no
// event is lost or repeated.
//
// It is its own module (gorilla/websocket only); build it outside the
// repository's workspace:
//
//	cd doc/examples/go && GOWORK=off go run . -url ws://127.0.0.1:18104/ws/sync -key sk-lurus-... -device cli-1
//
// It prints one JSON line per event, state and connection status.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"time"

	"github.com/gorilla/websocket"
)

// Close codes sync-service sends besides the standard ones.
const (
	closeCredentialsChanged = 4001 // reconnect: authenticates again
	closeSlowConsumer       = 4008 // reconnect with last_event_id
)

// serverMessage is any message from sync-service.
type serverMessage struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Reason  string          `json:"reason,omitempty"`
	Message string          `json:"message,omitempty"`
	Event   *event          `json:"event,omitempty"`
	State   json.RawMessage `json:"state,omitempty"`
}

type event struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	OccurredAt time.Time       `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
}

func main() {
	wsURL := flag.String("url", "ws://127.0.0.1:18104/ws/sync", "sync-service WebSocket URL")
	key := flag.String("key", os.Getenv("LURUS_API_KEY"), "API key (default $LURUS_API_KEY)")
	device := flag.String("device", "go-cli", "device id")
	lastID := flag.String("last-event-id", "", "resume after this event id")
	maxEvents := flag.Int("max-events", 0, "exit after this many events (0: run until interrupted)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c := &client{url: *wsURL, key: *key, device: *device, lastEventID: *lastID, max: *maxEvents}
	if err := c.run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "sync-client:", err)
		os.Exit(1)
	}
}

type client struct {
	url, key, device string
	lastEventID      string
	max, seen        int
}

var errDone = errors.New("done")

// run connects and reconnects until ctx ends, max events arrived, or the
// key is refused.
func (c *client) run(ctx context.Context) error {
	attempt := 0
	for {
		code, err := c.session(ctx, &attempt)
		switch {
		case errors.Is(err, errDone):
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case code == http.StatusUnauthorized || code == http.StatusForbidden:
			return fmt.Errorf("refused: %w", err) // a bad key does not get better
		}
		out(map[string]any{"kind": "close", "error": fmt.Sprint(err)})
		// Exponential backoff with full jitter, 0.5 s doubling to 30 s.
		backoff := min(30*time.Second, 500*time.Millisecond<<min(attempt, 6))
		attempt++
		select {
		case <-time.After(rand.N(backoff) + 50*time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// session runs one connection; it returns the HTTP status of a refused
// upgrade, or the error that ended it.
func (c *client) session(ctx context.Context, attempt *int) (int, error) {
	q := url.Values{"device_id": {c.device}}
	if c.lastEventID != "" {
		q.Set("last_event_id", c.lastEventID)
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, resp, err := d.DialContext(ctx, c.url+"?"+q.Encode(), http.Header{"Authorization": {"Bearer " + c.key}})
	if err != nil {
		if resp != nil {
			return resp.StatusCode, fmt.Errorf("upgrade: %s", resp.Status)
		}
		return 0, err
	}
	defer conn.Close()
	*attempt = 0
	out(map[string]any{"kind": "open", "resumed_from": c.lastEventID})
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	// The server pings every 30 s; gorilla answers pings while reading.
	// A connection silent for 75 s is dead.
	conn.SetPingHandler(func(data string) error {
		_ = conn.SetReadDeadline(time.Now().Add(75 * time.Second))
		return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
	})
	for {
		_ = conn.SetReadDeadline(time.Now().Add(75 * time.Second))
		var m serverMessage
		if err := conn.ReadJSON(&m); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && (ce.Code == closeSlowConsumer || ce.Code == closeCredentialsChanged) {
				*attempt = 0
			}
			return 0, err
		}
		switch m.Type {
		case "event":
			c.lastEventID = m.Event.ID
			out(map[string]any{"kind": "event", "id": m.Event.ID, "type": m.Event.Type, "data": m.Event.Data})
			if c.seen++; c.max > 0 && c.seen >= c.max {
				_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
				return 0, errDone
			}
		case "sync_state":
			var st struct {
				LastEventID string `json:"last_event_id"`
			}
			if json.Unmarshal(m.State, &st) == nil && st.LastEventID != "" {
				c.lastEventID = st.LastEventID
			}
			out(map[string]any{"kind": "state", "reason": m.Reason, "state": m.State})
		case "error":
			out(map[string]any{"kind": "error", "reason": m.Reason, "message": m.Message})
		}
	}
}

func out(v any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

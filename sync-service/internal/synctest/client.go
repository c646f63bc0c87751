package synctest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// Message is any server → client message, decoded loosely.
type Message struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Reason  string          `json:"reason,omitempty"`
	Message string          `json:"message,omitempty"`
	Event   *Event          `json:"event,omitempty"`
	State   json.RawMessage `json:"state,omitempty"`
	Time    *time.Time      `json:"time,omitempty"`
}

// Event is the event of an "event" message.
type Event struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	OccurredAt time.Time       `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
}

// Dial opens a socket to url with header; on a refused upgrade it returns
// the HTTP response (status and apperr body) with the error.
func Dial(ctx context.Context, url string, header http.Header) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	return d.DialContext(ctx, url, header)
}

// Read reads the next message within timeout (a test guard, not a timing
// assertion).
func Read(c *websocket.Conn, timeout time.Duration) (Message, error) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	var m Message
	_, raw, err := c.ReadMessage()
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("undecodable message %s: %w", raw, err)
	}
	return m, nil
}

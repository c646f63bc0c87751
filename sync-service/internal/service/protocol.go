package service

import (
	"encoding/json"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// Message types of the WebSocket protocol (doc/client-sync-api.md).
const (
	// client → server
	MsgPing        = "ping"
	MsgSubscribe   = "subscribe"
	MsgSyncRequest = "sync_request"
	// server → client
	MsgPong      = "pong"
	MsgEvent     = "event"
	MsgSyncState = "sync_state"
	MsgError     = "error"
)

// Reasons a sync_state is sent.
const (
	// StateRequested answers a sync_request.
	StateRequested = "requested"
	// StateResumeUnavailable replaces a replay: the last_event_id given at
	// connect is unknown, older than the stream keeps, or too far behind.
	StateResumeUnavailable = "resume_unavailable"
)

// Close codes the server sends besides the standard ones (1000 normal,
// 1001 going away, 1008 policy violation, 1009 message too big).
const (
	// CloseCredentialsChanged: the key or user changed; reconnect, which
	// authenticates again (and fails if the key was revoked).
	CloseCredentialsChanged = 4001
	// CloseSlowConsumer: the client fell more than the send queue behind;
	// reconnect with last_event_id to get what it missed.
	CloseSlowConsumer = 4008
	// CloseTooManyConnections: the user (ws.max_per_user) or the client
	// address (ws.max_per_ip) already holds the most connections allowed;
	// the connection is closed right after the upgrade. Close another one
	// or back off before reconnecting.
	CloseTooManyConnections = 4029
)

// maxClientMsgID bounds the optional correlation id of a client message.
const maxClientMsgID = 64

// ClientMessage is any message a client sends. Fields a type does not use
// are ignored, as are unknown fields (forward compatibility).
type ClientMessage struct {
	Type string `json:"type"`
	// ID, optional, is echoed in the direct reply (pong, sync_state, error).
	ID string `json:"id,omitempty"`
	// Types, for subscribe: the event types to receive (empty: all).
	Types []string `json:"types,omitempty"`
}

// ParseClientMessage decodes and checks one text message.
func ParseClientMessage(raw []byte) (ClientMessage, error) {
	var m ClientMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return ClientMessage{}, apperr.New(apperr.ReasonInvalidMessage, "message is not a JSON object with a string \"type\"")
	}
	if len(m.ID) > maxClientMsgID {
		return ClientMessage{}, apperr.Newf(apperr.ReasonInvalidMessage, "id longer than %d characters", maxClientMsgID)
	}
	switch m.Type {
	case MsgPing, MsgSubscribe, MsgSyncRequest:
		return m, nil
	case "":
		return m, apperr.New(apperr.ReasonInvalidMessage, "message has no \"type\"")
	default:
		return m, apperr.Newf(apperr.ReasonInvalidMessage, "unknown message type %q", m.Type)
	}
}

// PongMessage answers a ping.
type PongMessage struct {
	Type string    `json:"type"`
	ID   string    `json:"id,omitempty"`
	Time time.Time `json:"time"`
}

// EventMessage carries one user event.
type EventMessage struct {
	Type  string    `json:"type"`
	Event EventBody `json:"event"`
}

// EventBody is the user event inside an EventMessage.
type EventBody struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	OccurredAt time.Time       `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
}

// SyncStateMessage carries the user's full current state.
type SyncStateMessage struct {
	Type   string                `json:"type"`
	ID     string                `json:"id,omitempty"`
	Reason string                `json:"reason"`
	State  internalapi.SyncState `json:"state"`
}

// ErrorMessage reports a problem without closing the connection.
type ErrorMessage struct {
	Type    string `json:"type"`
	ID      string `json:"id,omitempty"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// EncodePong encodes a pong.
func EncodePong(id string, now time.Time) []byte {
	return mustJSON(PongMessage{Type: MsgPong, ID: id, Time: now.UTC()})
}

// EncodeEvent encodes a user event.
func EncodeEvent(env events.Envelope) []byte {
	data := env.Data
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	return mustJSON(EventMessage{Type: MsgEvent, Event: EventBody{ID: env.ID, Type: env.Type, OccurredAt: env.OccurredAt, Data: data}})
}

// EncodeSyncState encodes a sync_state.
func EncodeSyncState(id, reason string, s internalapi.SyncState) []byte {
	return mustJSON(SyncStateMessage{Type: MsgSyncState, ID: id, Reason: reason, State: s})
}

// EncodeError encodes err as an error message; an internal fault shows only
// a generic message, as apperr.Render does.
func EncodeError(id string, err error) []byte {
	_, body := apperr.Render(err)
	return mustJSON(ErrorMessage{Type: MsgError, ID: id, Reason: body.Error.Reason, Message: body.Error.Message})
}

// mustJSON marshals the protocol types above, which cannot fail except for
// an invalid RawMessage; that one event is then sent without its data.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		if m, ok := v.(EventMessage); ok {
			m.Event.Data = json.RawMessage("{}")
			return mustJSON(m)
		}
		panic(err)
	}
	return b
}

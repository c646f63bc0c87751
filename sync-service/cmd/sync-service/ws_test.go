package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/sync-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/sync-service/internal/synctest"
)

// Three devices of one user (two by header, one by browser ticket) get the
// user's event; another user's device does not: the first event it gets is
// its own, published after the other user's.
func TestDevicesOfOneUserReceiveItsEventsOnly(t *testing.T) {
	s := startStack(t, nil)
	aliceKey, bobKey := s.user("usr_alice"), s.user("usr_bob")

	var alice []*websocket.Conn
	alice = append(alice, s.dial(aliceKey, url.Values{"device_id": {"phone"}}))
	alice = append(alice, s.dial(aliceKey, url.Values{"device_id": {"laptop"}}))
	status, body := s.ticket(aliceKey, testOrigin)
	if status != http.StatusCreated {
		t.Fatalf("ticket: %d %v", status, body)
	}
	browser, resp, err := s.tryDial("", url.Values{"device_id": {"browser"}, "ticket": {body["ticket"].(string)}}, http.Header{"Origin": {testOrigin}})
	if err != nil {
		t.Fatalf("ticket dial: %v %s", err, describe(resp))
	}
	alice = append(alice, browser)
	bob := s.dial(bobKey, url.Values{"device_id": {"bob-phone"}})
	s.waitMetric("lurus_sync_connections", "4")
	s.waitMetric("lurus_sync_users_online", "2")

	sent := s.publish("usr_alice", events.TypeBalanceChanged, events.BalanceChanged{BalanceMicros: 4_000_000, DeltaMicros: -1_000_000, Kind: "usage"})
	mine := s.publish("usr_bob", events.TypeBalanceChanged, events.BalanceChanged{BalanceMicros: 1})
	for i, c := range alice {
		e := readEvent(t, c)
		if e.ID != sent.ID || e.Type != events.TypeBalanceChanged {
			t.Fatalf("alice device %d got %+v", i, e)
		}
		d, err := events.DecodeData[events.BalanceChanged](events.Envelope{Data: e.Data})
		if err != nil || d.BalanceMicros != 4_000_000 || d.DeltaMicros != -1_000_000 {
			t.Fatalf("alice device %d data %s (%v)", i, e.Data, err)
		}
	}
	if e := readEvent(t, bob); e.ID != mine.ID {
		t.Fatalf("bob's first event is %s, want his own %s (alice's was %s)", e.ID, mine.ID, sent.ID)
	}
	if got := s.metric(`lurus_sync_messages_out_total{type="event"}`); got != "4" {
		t.Fatalf("events out = %q", got)
	}
	if got := s.metric("lurus_sync_fanout_latency_seconds_count"); got != "4" {
		t.Fatalf("fan-out latency observations = %q", got)
	}
	if logs := s.logs.String(); strings.Contains(logs, aliceKey) || strings.Contains(logs, body["ticket"].(string)) {
		t.Fatal("a key or ticket reached the logs")
	}
}

func TestRefusedBeforeUpgrade(t *testing.T) {
	s := startStack(t, nil)
	key := s.user("usr_carol")
	s.billing.AddKey("sk-lurus-disabled0000000000000000000000000000", internalapi.VerifyKeyResponse{KeyID: "key_d", UserID: "usr_d", UserActive: false})
	past := time.Now().Add(-time.Hour)
	s.billing.AddKey("sk-lurus-expired00000000000000000000000000000", internalapi.VerifyKeyResponse{KeyID: "key_e", UserID: "usr_e", UserActive: true, ExpiresAt: &past})
	s.billing.AddKey("sk-lurus-ipbound00000000000000000000000000000", internalapi.VerifyKeyResponse{KeyID: "key_i", UserID: "usr_i", UserActive: true, AllowedIPs: []string{"10.1.0.0/16"}})

	_, used := s.ticket(key, testOrigin)
	usedTicket := used["ticket"].(string)
	if c, resp, err := s.tryDial("", url.Values{"ticket": {usedTicket}}, http.Header{"Origin": {testOrigin}}); err != nil {
		t.Fatalf("first use of the ticket refused: %v %s", err, describe(resp))
	} else {
		c.Close()
	}
	_, fresh := s.ticket(key, testOrigin)
	freshTicket := fresh["ticket"].(string)

	tests := []struct {
		name   string
		key    string
		query  url.Values
		origin string
		status int
		reason string
	}{
		{"no credentials", "", nil, "", 401, "MISSING_CREDENTIALS"},
		{"malformed key", "sk-not-a-lurus-key", nil, "", 401, "INVALID_CREDENTIALS"},
		{"unknown key", "sk-lurus-unknown000000000000000000000000000000", nil, "", 401, "INVALID_CREDENTIALS"},
		{"disabled user", "sk-lurus-disabled0000000000000000000000000000", nil, "", 403, "USER_DISABLED"},
		{"expired key", "sk-lurus-expired00000000000000000000000000000", nil, "", 403, "KEY_EXPIRED"},
		{"address not allowed", "sk-lurus-ipbound00000000000000000000000000000", nil, "", 403, "IP_NOT_ALLOWED"},
		{"reused ticket", "", url.Values{"ticket": {usedTicket}}, testOrigin, 401, "INVALID_TICKET"},
		{"forged ticket", "", url.Values{"ticket": {"tkt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}, testOrigin, 401, "INVALID_TICKET"},
		{"ticket from foreign origin", "", url.Values{"ticket": {freshTicket}}, "https://evil.example", 403, "ORIGIN_NOT_ALLOWED"},
		{"ticket without origin", "", url.Values{"ticket": {freshTicket}}, "", 403, "ORIGIN_NOT_ALLOWED"},
		{"key from foreign origin", key, nil, "https://evil.example", 403, "ORIGIN_NOT_ALLOWED"},
		{"wildcard origin's parent domain", key, nil, "https://example.org", 403, "ORIGIN_NOT_ALLOWED"},
		{"bad device id", key, url.Values{"device_id": {"has space"}}, "", 400, "INVALID_DEVICE_ID"},
		{"device id too long", key, url.Values{"device_id": {strings.Repeat("d", 129)}}, "", 400, "INVALID_DEVICE_ID"},
		{"unknown event type", key, url.Values{"types": {"balance.changed,nope"}}, "", 400, "INVALID_ARGUMENT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			c, resp, err := s.tryDial(tt.key, tt.query, h)
			if err == nil {
				c.Close()
				t.Fatal("upgrade accepted")
			}
			if resp == nil || resp.StatusCode != tt.status {
				t.Fatalf("got %s, want %d", describe(resp), tt.status)
			}
			var body struct {
				Error struct{ Reason string } `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if body.Error.Reason != tt.reason {
				t.Fatalf("reason %q, want %q", body.Error.Reason, tt.reason)
			}
		})
	}
	// The fresh ticket was refused for its origin before being redeemed.
	if c, resp, err := s.tryDial("", url.Values{"ticket": {freshTicket}}, http.Header{"Origin": {"https://app.example.org"}}); err != nil {
		t.Fatalf("fresh ticket from an allowed wildcard origin: %v %s", err, describe(resp))
	} else {
		c.Close()
	}
	if got := s.metric(`lurus_sync_auth_failures_total{reason="ORIGIN_NOT_ALLOWED"}`); got != "4" {
		t.Fatalf("origin refusals counted %q", got)
	}
	// Not a WebSocket handshake.
	resp, err := http.Get(s.base + "/ws/sync?device_id=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("plain GET: %d", resp.StatusCode)
	}
}

func TestResumeDeliversExactlyTheMissedEvents(t *testing.T) {
	s := startStack(t, nil)
	key := s.user("usr_dan")
	c := s.dial(key, nil)
	var seen []string
	for i := 0; i < 3; i++ {
		sent := s.publish("usr_dan", events.TypeQuotaUpdated, events.QuotaUpdated{QuotaUsedTokens: int64(i)})
		if e := readEvent(t, c); e.ID != sent.ID {
			t.Fatalf("live event %d: %s, want %s", i, e.ID, sent.ID)
		}
		seen = append(seen, sent.ID)
	}
	c.Close()
	s.waitMetric("lurus_sync_connections", "0")

	var missed []string
	for i := 0; i < 4; i++ {
		missed = append(missed, s.publish("usr_dan", events.TypeBalanceChanged, events.BalanceChanged{BalanceMicros: int64(i)}).ID)
		s.publish("usr_other", events.TypeBalanceChanged, events.BalanceChanged{}) // noise
	}
	c = s.dial(key, url.Values{"last_event_id": {seen[len(seen)-1]}})
	for i, want := range missed {
		if e := readEvent(t, c); e.ID != want {
			t.Fatalf("replayed event %d is %s, want %s", i, e.ID, want)
		}
	}
	live := s.publish("usr_dan", events.TypeUsageRecorded, events.UsageRecorded{RequestID: "r1"})
	if e := readEvent(t, c); e.ID != live.ID {
		t.Fatalf("after the replay got %s, want the live %s (a duplicate or a gap)", e.ID, live.ID)
	}
	if got := s.metric(`lurus_sync_resumes_total{result="replayed"}`); got != "1" {
		t.Fatalf("resumes = %q", got)
	}

	// An id the stream does not hold: the full state instead.
	c2 := s.dial(key, url.Values{"last_event_id": {"01ARZ3NDEKTSV4RRFFQ69G5FAV"}, "device_id": {"dev-2"}})
	m, err := synctest.Read(c2, 10*time.Second)
	if err != nil || m.Type != "sync_state" || m.Reason != "resume_unavailable" {
		t.Fatalf("got %+v, %v; want a sync_state", m, err)
	}
	var st internalapi.SyncState
	if err := json.Unmarshal(m.State, &st); err != nil || st.UserID != "usr_dan" || st.BalanceMicros != 5_000_000 {
		t.Fatalf("state %s (%v)", m.State, err)
	}
}

func TestSlowClientIsDroppedOthersGetEverything(t *testing.T) {
	s := startStack(t, func(c *conf.Config) {
		c.WS.SendQueue = 8
		c.WS.WriteTimeout = time.Second
	})
	key := s.user("usr_erin")
	// The slow client never reads; a small receive buffer makes its
	// socket back up sooner.
	s.dialSmallBuffer(key, "slow")
	fast := []*websocket.Conn{s.dial(key, url.Values{"device_id": {"fast-1"}}), s.dial(key, url.Values{"device_id": {"fast-2"}})}
	s.waitMetric("lurus_sync_connections", "3")

	// Publish in steps of two and let the reading clients take each step
	// before the next, so they never fall behind; keep going (bounded)
	// until the slow client's queue overflows.
	pad := strings.Repeat("x", 16<<10)
	published := 0
	for step := 0; s.metric("lurus_sync_slow_client_drops_total") != "1"; step++ {
		if step == 1000 {
			t.Fatalf("slow client not dropped after %d events", published)
		}
		var ids []string
		for j := 0; j < 2; j++ {
			ids = append(ids, s.publish("usr_erin", events.TypeUsageRecorded, map[string]any{"request_id": pad, "seq": published}).ID)
			published++
		}
		for i, c := range fast {
			for _, want := range ids {
				if e := readEvent(t, c); e.ID != want {
					t.Fatalf("reading client %d got %s, want %s", i, e.ID, want)
				}
			}
		}
	}
	s.waitMetric("lurus_sync_connections", "2")
	s.waitMetric(`lurus_sync_disconnects_total{cause="slow"}`, "1")
	after := s.publish("usr_erin", events.TypeBalanceChanged, events.BalanceChanged{})
	for _, c := range fast {
		if e := readEvent(t, c); e.ID != after.ID {
			t.Fatalf("after the drop got %s", e.ID)
		}
	}
	t.Logf("slow client dropped after %d events of %d KiB", published, len(pad)>>10)
}

func TestProtocolMessages(t *testing.T) {
	s := startStack(t, nil)
	key := s.user("usr_fay")
	c := s.dial(key, nil)

	send(t, c, `{"type":"ping","id":"p1"}`)
	if m := readUntil(t, c, "pong"); m.ID != "p1" || m.Time == nil {
		t.Fatalf("pong %+v", m)
	}
	for _, bad := range []string{`not json`, `{"type":"dance"}`, `{"id":"x"}`, `{"type":"subscribe","types":["nope"]}`, `[1,2]`} {
		send(t, c, bad)
		if m := readUntil(t, c, "error"); m.Reason != "INVALID_MESSAGE" || m.Message == "" {
			t.Fatalf("%s → %+v", bad, m)
		}
	}
	if err := c.WriteMessage(websocket.BinaryMessage, []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	if m := readUntil(t, c, "error"); m.Reason != "INVALID_MESSAGE" {
		t.Fatalf("binary → %+v", m)
	}

	send(t, c, `{"type":"sync_request","id":"s1"}`)
	m := readUntil(t, c, "sync_state")
	var st internalapi.SyncState
	if err := json.Unmarshal(m.State, &st); err != nil || m.ID != "s1" || m.Reason != "requested" || st.QuotaRemainingTokens != 990 || st.AsOf.IsZero() {
		t.Fatalf("sync_state %+v %s", m, m.State)
	}

	send(t, c, `{"type":"subscribe","types":["balance.changed"]}`)
	send(t, c, `{"type":"ping","id":"after-subscribe"}`) // the filter is set once the pong comes back
	readUntil(t, c, "pong")
	s.publish("usr_fay", events.TypeQuotaUpdated, events.QuotaUpdated{})
	want := s.publish("usr_fay", events.TypeBalanceChanged, events.BalanceChanged{BalanceMicros: 7})
	if e := readEvent(t, c); e.ID != want.ID {
		t.Fatalf("filtered connection got %s (%s), want the balance.changed", e.ID, e.Type)
	}
	send(t, c, `{"type":"subscribe"}`) // back to all types
	send(t, c, `{"type":"ping"}`)
	readUntil(t, c, "pong")
	q := s.publish("usr_fay", events.TypeQuotaLow, events.QuotaLow{Threshold: "quota"})
	if e := readEvent(t, c); e.ID != q.ID {
		t.Fatalf("unfiltered connection got %s", e.ID)
	}

	// A message over the read limit closes with 1009.
	send(t, c, `{"type":"ping","pad":"`+strings.Repeat("a", 5000)+`"}`)
	if code := closeCode(t, c); code != websocket.CloseMessageTooBig {
		t.Fatalf("close code %d, want 1009", code)
	}
}

func TestTypesQueryFiltersReplayAndLive(t *testing.T) {
	s := startStack(t, nil)
	key := s.user("usr_gus")
	first := s.publish("usr_gus", events.TypeBalanceChanged, events.BalanceChanged{})
	s.publish("usr_gus", events.TypeUsageRecorded, events.UsageRecorded{})
	want := s.publish("usr_gus", events.TypeQuotaExhausted, events.QuotaExhausted{Threshold: "quota"})
	c := s.dial(key, url.Values{"last_event_id": {first.ID}, "types": {"quota.exhausted,quota.low"}})
	if e := readEvent(t, c); e.ID != want.ID {
		t.Fatalf("got %s (%s)", e.ID, e.Type)
	}
}

func TestFloodIsClosed(t *testing.T) {
	s := startStack(t, func(c *conf.Config) { c.WS.MessageRate, c.WS.MessageBurst = 1, 5 })
	c := s.dial(s.user("usr_hal"), nil)
	for i := 0; i < 50; i++ {
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe"}`)); err != nil {
			break
		}
	}
	if code := closeCode(t, c); code != websocket.ClosePolicyViolation {
		t.Fatalf("close code %d, want 1008", code)
	}
	s.waitMetric(`lurus_sync_disconnects_total{cause="flood"}`, "1")
}

func TestKeyChangedClosesSessionsAndEvictsCache(t *testing.T) {
	s := startStack(t, nil)
	key := s.user("usr_ida")
	other := s.user("usr_jon")
	c1 := s.dial(key, url.Values{"device_id": {"a"}})
	c2 := s.dial(key, url.Values{"device_id": {"b"}})
	keep := s.dial(other, nil)
	s.waitMetric("lurus_sync_connections", "3")
	verifies := s.billing.Verifies.Load()

	s.billing.RevokeKey(key)
	if err := natsbus.PublishCore(s.nats.Conn, s.nats.Names.Subject(events.SubjectKeyChanged), events.KeyChanged{KeyID: "key_usr_ida", UserID: "usr_ida"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*websocket.Conn{c1, c2} {
		if code := closeCode(t, c); code != 4001 {
			t.Fatalf("close code %d, want 4001", code)
		}
	}
	// The cache forgot the key: billing is asked again and refuses it.
	if _, resp, err := s.tryDial(key, nil, nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("revoked key reconnected: %v %s", err, describe(resp))
	}
	if s.billing.Verifies.Load() == verifies {
		t.Fatal("billing was not asked again after key.changed")
	}
	send(t, keep, `{"type":"ping"}`)
	readUntil(t, keep, "pong")
}

func TestKeyVerificationIsCached(t *testing.T) {
	s := startStack(t, nil)
	key := s.user("usr_kim")
	for i := 0; i < 3; i++ {
		c := s.dial(key, url.Values{"device_id": {"d" + string(rune('0'+i))}})
		c.Close()
	}
	if n := s.billing.Verifies.Load(); n != 1 {
		t.Fatalf("billing verified the key %d times, want 1", n)
	}
	bad := "sk-lurus-unknown000000000000000000000000000000"
	for i := 0; i < 3; i++ {
		s.tryDial(bad, nil, nil)
	}
	if n := s.billing.Verifies.Load(); n != 2 {
		t.Fatalf("billing verified %d times, want 2 (refusal cached)", n)
	}
}

func TestServerPingsAndClosesSilentClients(t *testing.T) {
	s := startStack(t, func(c *conf.Config) {
		c.WS.PingInterval = 100 * time.Millisecond
		c.WS.PongWait = 100 * time.Millisecond
	})
	key := s.user("usr_lee")
	alive := s.dial(key, url.Values{"device_id": {"alive"}})
	pings := make(chan struct{}, 100)
	alive.SetPingHandler(func(data string) error {
		pings <- struct{}{}
		return alive.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	silent := s.dial(key, url.Values{"device_id": {"silent"}})
	silent.SetPingHandler(func(string) error { return nil }) // never answers

	aliveErr := make(chan error, 1)
	go func() {
		for {
			if _, _, err := alive.ReadMessage(); err != nil {
				aliveErr <- err
				return
			}
		}
	}()
	if code := closeCode(t, silent); code != -1 && code != websocket.CloseAbnormalClosure {
		t.Fatalf("silent client: close code %d, want the connection dropped", code)
	}
	s.waitMetric(`lurus_sync_disconnects_total{cause="timeout"}`, "1")
	// The answering client has seen more pings than the silent one lived
	// through, and is still connected.
	for i := 0; i < 6; i++ {
		select {
		case <-pings:
		case err := <-aliveErr:
			t.Fatalf("answering client dropped: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("no ping")
		}
	}
	select {
	case err := <-aliveErr:
		t.Fatalf("answering client dropped: %v", err)
	default:
	}
}

func TestShutdownClosesWith1001(t *testing.T) {
	s := startStack(t, nil)
	c := s.dial(s.user("usr_max"), nil)
	s.waitMetric("lurus_sync_connections", "1")
	go s.stop()
	if code := closeCode(t, c); code != websocket.CloseGoingAway {
		t.Fatalf("close code %d, want 1001", code)
	}
}

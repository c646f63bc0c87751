package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// TestBadInputWritesNothing: each bad request gets a 4xx with a stable
// reason, and nothing reaches the ledger or the idempotency table.
func TestBadInputWritesNothing(t *testing.T) {
	h := start(t, func(c *conf.Config, _ *App) { c.Server.MaxBodyBytes = 1024 })
	userID, _, _ := h.newUser(0, nil)
	_, _, otherKey := h.newUser(0, nil)
	topup := "/api/v1/billing/users/" + userID + "/topup"
	for _, tc := range []struct {
		name, method, path, token string
		body                      any
		hdr                       []string
		status                    int
		reason                    apperr.Reason
	}{
		{"zero top-up", "POST", topup, testAdmin, `{"amount_micros":0}`, []string{"Idempotency-Key", "k1"}, 400, apperr.ReasonInvalidAmount},
		{"negative top-up", "POST", topup, testAdmin, `{"amount_micros":-5}`, []string{"Idempotency-Key", "k2"}, 400, apperr.ReasonInvalidAmount},
		{"zero adjust", "POST", "/api/v1/billing/users/" + userID + "/adjust", testAdmin, `{"amount_micros":0}`, []string{"Idempotency-Key", "k3"}, 400, apperr.ReasonInvalidAmount},
		{"unknown user", "POST", "/api/v1/billing/users/usr_nobody/topup", testAdmin, `{"amount_micros":5}`, []string{"Idempotency-Key", "k4"}, 404, apperr.ReasonUserNotFound},
		{"missing idempotency key", "POST", topup, testAdmin, `{"amount_micros":5}`, nil, 400, apperr.ReasonInvalidIdemKey},
		{"malformed idempotency key", "POST", topup, testAdmin, `{"amount_micros":5}`, []string{"Idempotency-Key", "has space"}, 400, apperr.ReasonInvalidIdemKey},
		{"idempotency key too long", "POST", topup, testAdmin, `{"amount_micros":5}`, []string{"Idempotency-Key", strings.Repeat("a", 129)}, 400, apperr.ReasonInvalidIdemKey},
		{"malformed JSON", "POST", topup, testAdmin, `{"amount_micros":`, []string{"Idempotency-Key", "k5"}, 400, apperr.ReasonMalformedJSON},
		{"unknown field", "POST", topup, testAdmin, `{"amount":5}`, []string{"Idempotency-Key", "k6"}, 400, apperr.ReasonMalformedJSON},
		{"body too large", "POST", topup, testAdmin, `{"note":"` + strings.Repeat("x", 2000) + `","amount_micros":5}`, []string{"Idempotency-Key", "k7"}, 413, apperr.ReasonBodyTooLarge},
		{"no admin token", "POST", topup, "", `{"amount_micros":5}`, []string{"Idempotency-Key", "k8"}, 401, apperr.ReasonMissingCredentials},
		{"wrong admin token", "POST", topup, "nope", `{"amount_micros":5}`, []string{"Idempotency-Key", "k9"}, 401, apperr.ReasonInvalidCredentials},
		{"another user's key on sync", "GET", "/api/v1/billing/sync/" + userID, otherKey, nil, nil, 403, apperr.ReasonForbidden},
		{"another user's key on stream", "GET", "/api/v1/billing/sync/" + userID + "/stream", otherKey, nil, nil, 403, apperr.ReasonForbidden},
		{"garbage key", "GET", "/api/v1/billing/me", "sk-lurus-nope", nil, nil, 401, apperr.ReasonInvalidCredentials},
		{"negative credit", "POST", "/api/v1/billing/users", testAdmin, `{"name":"x","credit_limit_micros":-1}`, nil, 400, apperr.ReasonInvalidAmount},
		{"bad glob", "POST", "/api/v1/billing/prices", testAdmin, `{"model_pattern":"gpt-[","input_micros_per_mtok":1}`, nil, 400, apperr.ReasonInvalidGlob},
		{"bad time range", "GET", "/api/v1/billing/usage?from=yesterday", testAdmin, nil, nil, 400, apperr.ReasonInvalidTimeRange},
		{"bad cursor", "GET", "/api/v1/billing/users/" + userID + "/ledger?cursor=!!", testAdmin, nil, nil, 400, apperr.ReasonInvalidCursor},
		{"unknown route", "GET", "/api/v1/billing/nope", testAdmin, nil, nil, 404, apperr.ReasonRouteNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, raw := h.do(tc.method, tc.path, tc.token, tc.body, tc.hdr...)
			var b apperr.Body
			_ = json.Unmarshal(raw, &b)
			if st != tc.status || b.Error.Reason != string(tc.reason) {
				t.Fatalf("got %d %s, want %d %s", st, raw, tc.status, tc.reason)
			}
		})
	}
	if n := h.count(`SELECT count(*) FROM ledger_entries`) + h.count(`SELECT count(*) FROM idempotency_keys`); n != 0 {
		t.Fatalf("%d rows written by refused requests", n)
	}
}

// TestTopupIdempotency: a replay answers the first result; another body
// with the same key is 409; concurrent replays book once.
func TestTopupIdempotency(t *testing.T) {
	h := start(t, nil)
	userID, _, _ := h.newUser(0, nil)
	path := "/api/v1/billing/users/" + userID + "/topup"
	var wg sync.WaitGroup
	bodies := make([]string, 10)
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, raw := h.do("POST", path, testAdmin, `{"amount_micros":700,"note":"n"}`, "Idempotency-Key", "pay-1")
			if st != 201 {
				t.Errorf("status %d %s", st, raw)
			}
			bodies[i] = string(raw)
		}()
	}
	wg.Wait()
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Fatalf("replay answered %s, first %s", b, bodies[0])
		}
	}
	st, raw := h.do("POST", path, testAdmin, `{"amount_micros":701,"note":"n"}`, "Idempotency-Key", "pay-1")
	if st != 409 || !strings.Contains(string(raw), "IDEMPOTENCY_KEY_REUSED") {
		t.Fatalf("reuse: %d %s", st, raw)
	}
	if u := h.user(userID); u.BalanceMicros != 700 {
		t.Fatalf("balance %d after 10 replays of one top-up", u.BalanceMicros)
	}
}

// TestUserListAndEmail: email is unique; the list finds a user by email.
func TestUserListAndEmail(t *testing.T) {
	h := start(t, nil)
	userID, _, _ := h.newUser(0, map[string]any{"email": "Ann@example.com"})
	h.newUser(0, nil)
	st, raw := h.do("POST", "/api/v1/billing/users", testAdmin, map[string]any{"name": "dup", "email": "ann@example.com"})
	if st != 409 || !strings.Contains(string(raw), "ALREADY_EXISTS") {
		t.Fatalf("duplicate email: %d %s", st, raw)
	}
	var l struct {
		Items      []struct{ ID string } `json:"items"`
		NextCursor *string               `json:"next_cursor"`
	}
	st, raw = h.do("GET", "/api/v1/billing/users?email=ann@example.com", testAdmin, nil)
	h.must(st, raw, 200, &l)
	if len(l.Items) != 1 || l.Items[0].ID != userID {
		t.Fatalf("by email: %s", raw)
	}
	st, raw = h.do("GET", "/api/v1/billing/users?limit=1", testAdmin, nil)
	h.must(st, raw, 200, &l)
	if len(l.Items) != 1 || l.NextCursor == nil {
		t.Fatalf("page 1: %s", raw)
	}
	st, raw = h.do("GET", "/api/v1/billing/users?limit=1&cursor="+*l.NextCursor, testAdmin, nil)
	h.must(st, raw, 200, &l)
	if len(l.Items) != 1 || l.NextCursor != nil {
		t.Fatalf("page 2: %s", raw)
	}
}

// TestVerifyKeyAndPrices covers the gateway's internal routes.
func TestVerifyKeyAndPrices(t *testing.T) {
	h := start(t, nil)
	h.price("gpt-*", priceIn, priceOut)
	userID, keyID, key := h.newUser(0, map[string]any{"group": "vip"})
	var v internalapi.VerifyKeyResponse
	st, raw := h.do("POST", "/internal/v1/keys/verify", testInternal, internalapi.VerifyKeyRequest{Key: key})
	h.must(st, raw, 200, &v)
	if v.KeyID != keyID || v.UserID != userID || v.UserGroup != "vip" || !v.UserActive {
		t.Fatalf("verify: %+v", v)
	}
	st, raw = h.do("DELETE", "/api/v1/billing/keys/"+keyID, testAdmin, nil)
	h.must(st, raw, 200, nil)
	st, raw = h.do("POST", "/internal/v1/keys/verify", testInternal, internalapi.VerifyKeyRequest{Key: key})
	if st != 401 || !strings.Contains(string(raw), "KEY_REVOKED") {
		t.Fatalf("revoked key: %d %s", st, raw)
	}
	if st, _ := h.do("POST", "/internal/v1/keys/verify", testAdmin, internalapi.VerifyKeyRequest{Key: key}); st != 401 {
		t.Fatalf("admin token accepted on internal route: %d", st)
	}
	req, _ := http.NewRequest("GET", h.base+"/internal/v1/prices", nil)
	req.Header.Set("Authorization", "Bearer "+testInternal)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var pt internalapi.PriceTable
	_ = json.NewDecoder(resp.Body).Decode(&pt)
	resp.Body.Close()
	if len(pt.Prices) != 1 || resp.Header.Get("ETag") == "" {
		t.Fatalf("prices %+v etag %q", pt, resp.Header.Get("ETag"))
	}
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", resp.StatusCode)
	}
}

// sseEvent is one parsed Server-Sent Event (or a comment).
type sseEvent struct {
	id, event, data string
	comment         bool
}

// sseClient reads events from a stream response into a channel.
func sseClient(t *testing.T, ctx context.Context, url, key, lastID string) (<-chan sseEvent, int) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		return nil, resp.StatusCode
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" || resp.Header.Get("X-Accel-Buffering") != "no" {
		t.Errorf("headers: %v", resp.Header)
	}
	out := make(chan sseEvent, 100)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				out <- ev
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				ev.comment = true
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return out, 200
}

// next returns the next non-comment event (keep-alives are counted).
func next(t *testing.T, ch <-chan sseEvent, keepalives *int) sseEvent {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("stream ended")
			}
			if ev.comment {
				*keepalives++
				continue
			}
			return ev
		case <-timeout:
			t.Fatal("no event")
		}
	}
}

// TestSSEStream: a client gets the state, then balance.changed after a
// settlement; after reconnecting with Last-Event-ID it gets exactly the
// events it missed, in order; keep-alive comments arrive while idle.
func TestSSEStream(t *testing.T) {
	h := start(t, nil)
	h.price("gpt-*", priceIn, priceOut)
	userID, keyID, key := h.newUser(50_000, nil)
	url := h.base + "/api/v1/billing/sync/" + userID + "/stream"
	ctx, cancel := context.WithCancel(context.Background())
	ch, st := sseClient(t, ctx, url, key, "")
	if st != 200 {
		t.Fatalf("stream status %d", st)
	}
	var ka int
	if ev := next(t, ch, &ka); ev.event != "sync_state" || !strings.Contains(ev.data, `"balance_micros":50000`) {
		t.Fatalf("first event %+v", ev)
	}
	h.publish(usage("req-sse-1", userID, keyID, 1000, 0), "req-sse-1")
	var got []sseEvent
	for len(got) == 0 || got[len(got)-1].event != events.TypeBalanceChanged {
		got = append(got, next(t, ch, &ka))
	}
	last := got[len(got)-1]
	var env events.Envelope
	if err := json.Unmarshal([]byte(last.data), &env); err != nil || env.ID != last.id || env.UserID != userID {
		t.Fatalf("balance.changed %+v (%v)", last, err)
	}
	bc, _ := events.DecodeData[events.BalanceChanged](env)
	if bc.BalanceMicros != 50_000-1000 || bc.DeltaMicros != -1000 {
		t.Fatalf("balance.changed data %+v", bc)
	}
	for ka == 0 {
		next2 := make(chan struct{})
		go func() { time.Sleep(400 * time.Millisecond); close(next2) }()
		select {
		case ev := <-ch:
			if ev.comment {
				ka++
			}
		case <-next2:
		}
	}
	cancel()

	// Missed while disconnected: two top-ups.
	for _, k := range []string{"a", "b"} {
		st, raw := h.do("POST", "/api/v1/billing/users/"+userID+"/topup", testAdmin, `{"amount_micros":10}`, "Idempotency-Key", "sse-"+k)
		h.must(st, raw, 201, nil)
	}
	h.eventually("outbox drained", func() bool { return h.count(`SELECT count(*) FROM outbox`) == 0 })
	stored := h.userEvents(userID)
	var missed []string
	for i, e := range stored {
		if e.ID == last.id {
			for _, m := range stored[i+1:] {
				missed = append(missed, m.ID)
			}
		}
	}
	if len(missed) < 2 {
		t.Fatalf("expected the top-ups after %s in %d stored events", last.id, len(stored))
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	ch2, _ := sseClient(t, ctx2, url, key, last.id)
	for i, id := range missed {
		ev := next(t, ch2, &ka)
		if ev.id != id {
			t.Fatalf("resumed event %d: %+v, want id %s (no sync_state, no gap, no duplicate)", i, ev, id)
		}
	}
	// A live event after the replay arrives too, once.
	st2, raw := h.do("POST", "/api/v1/billing/users/"+userID+"/topup", testAdmin, `{"amount_micros":10}`, "Idempotency-Key", "sse-c")
	h.must(st2, raw, 201, nil)
	if ev := next(t, ch2, &ka); ev.event != events.TypeBalanceChanged || ev.id == missed[len(missed)-1] {
		t.Fatalf("live event after resume: %+v", ev)
	}
}

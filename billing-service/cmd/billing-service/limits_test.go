package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit"
	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit/redisstore"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

// withGroupLimits sets limits.groups in the config.
func withGroupLimits(groups map[string]conf.GroupLimits) func(*conf.Config, *App) {
	return func(c *conf.Config, _ *App) { c.Limits.Groups = groups }
}

// verify asks /internal/v1/keys/verify about key.
func (h *harness) verify(key string) internalapi.VerifyKeyResponse {
	h.t.Helper()
	var v internalapi.VerifyKeyResponse
	st, raw := h.do("POST", "/internal/v1/keys/verify", testInternal, internalapi.VerifyKeyRequest{Key: key})
	h.must(st, raw, 200, &v)
	return v
}

// keyChanged returns a function that waits for a key.changed
// notification with this key id (or "" for all of a user's keys) and user.
func (h *harness) keyChanged() func(keyID, userID string) {
	h.t.Helper()
	notes := make(chan *nats.Msg, 64)
	sub, err := h.ne.Conn.ChanSubscribe(h.ne.Names.Subject(events.SubjectKeyChanged), notes)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := h.ne.Conn.Flush(); err != nil {
		h.t.Fatal(err)
	}
	return func(keyID, userID string) {
		h.t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case m := <-notes:
				var kc events.KeyChanged
				if json.Unmarshal(m.Data, &kc) == nil && kc.KeyID == keyID && kc.UserID == userID {
					return
				}
			case <-timeout:
				h.t.Fatalf("no key.changed for key %q user %q", keyID, userID)
			}
		}
	}
}

// TestLimitsSetAndValidated: rpm_limit, tpm_limit and concurrency_limit
// are set on user and key create and PATCH (absent keeps, 0 clears), are
// bounded to 0..10^9 with 400 INVALID_ARGUMENT naming the field, and every
// change publishes key.changed so the gateways' caches drop the old limits.
func TestLimitsSetAndValidated(t *testing.T) {
	h := start(t, nil)
	changed := h.keyChanged()
	userID, keyID, _ := h.newUser(0, map[string]any{"rpm_limit": 60, "tpm_limit": 100_000, "concurrency_limit": 4})
	changed(keyID, userID)
	if u := h.user(userID); u.Limits != (ratelimit.Limits{RPM: 60, TPM: 100_000, Concurrency: 4}) {
		t.Fatalf("created user limits %+v", u.Limits)
	}
	st, raw := h.do("GET", "/api/v1/billing/users/"+userID, testAdmin, nil)
	h.must(st, raw, 200, nil)
	for _, f := range []string{`"rpm_limit":60`, `"tpm_limit":100000`, `"concurrency_limit":4`} {
		if !strings.Contains(string(raw), f) {
			t.Fatalf("GET user lacks %s: %s", f, raw)
		}
	}

	// PATCH: a given field changes, an absent one is kept, 0 clears.
	var u struct{ ratelimit.Limits }
	st, raw = h.do("PATCH", "/api/v1/billing/users/"+userID, testAdmin, map[string]any{"rpm_limit": 30, "concurrency_limit": 0})
	h.must(st, raw, 200, &u)
	if u.Limits != (ratelimit.Limits{RPM: 30, TPM: 100_000}) {
		t.Fatalf("patched user limits %+v", u.Limits)
	}
	changed("", userID)
	// A PATCH of the name alone changes no limit (and must not fail).
	st, raw = h.do("PATCH", "/api/v1/billing/users/"+userID, testAdmin, map[string]any{"name": "renamed"})
	h.must(st, raw, 200, nil)

	var k struct {
		ID string `json:"id"`
		ratelimit.Limits
	}
	st, raw = h.do("POST", "/api/v1/billing/users/"+userID+"/keys", testAdmin, map[string]any{"name": "k", "rpm_limit": 10, "tpm_limit": 500})
	h.must(st, raw, 201, &k)
	if k.Limits != (ratelimit.Limits{RPM: 10, TPM: 500}) {
		t.Fatalf("created key limits %+v", k.Limits)
	}
	changed(k.ID, userID)
	st, raw = h.do("PATCH", "/api/v1/billing/keys/"+k.ID, testAdmin, map[string]any{"tpm_limit": 0, "concurrency_limit": 2})
	h.must(st, raw, 200, &k)
	if k.Limits != (ratelimit.Limits{RPM: 10, Concurrency: 2}) {
		t.Fatalf("patched key limits %+v", k.Limits)
	}
	changed(k.ID, userID)
	st, raw = h.do("GET", "/api/v1/billing/keys/"+k.ID, testAdmin, nil)
	h.must(st, raw, 200, &k)
	if k.Limits != (ratelimit.Limits{RPM: 10, Concurrency: 2}) {
		t.Fatalf("stored key limits %+v", k.Limits)
	}

	for _, tc := range []struct {
		name, method, path, body, field string
	}{
		{"negative user rpm", "POST", "/api/v1/billing/users", `{"name":"x","rpm_limit":-1}`, "rpm_limit"},
		{"absurd user tpm", "POST", "/api/v1/billing/users", `{"name":"x","tpm_limit":1000000001}`, "tpm_limit"},
		{"negative user concurrency on PATCH", "PATCH", "/api/v1/billing/users/" + userID, `{"concurrency_limit":-3}`, "concurrency_limit"},
		{"absurd key rpm", "POST", "/api/v1/billing/users/" + userID + "/keys", `{"rpm_limit":99999999999}`, "rpm_limit"},
		{"negative key tpm on PATCH", "PATCH", "/api/v1/billing/keys/" + k.ID, `{"tpm_limit":-1}`, "tpm_limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, raw := h.do(tc.method, tc.path, testAdmin, tc.body)
			h.refused(st, raw, 400, apperr.ReasonInvalidArgument)
			if !strings.Contains(string(raw), tc.field) {
				t.Fatalf("error does not name %s: %s", tc.field, raw)
			}
		})
	}
	if u := h.user(userID); u.Limits != (ratelimit.Limits{RPM: 30, TPM: 100_000}) {
		t.Fatalf("refused PATCH changed the user: %+v", u.Limits)
	}
	st, raw = h.do("GET", "/api/v1/billing/keys/"+k.ID, testAdmin, nil)
	h.must(st, raw, 200, &k)
	if k.Limits != (ratelimit.Limits{RPM: 10, Concurrency: 2}) {
		t.Fatalf("refused PATCH changed the key: %+v", k.Limits)
	}
	if n := h.count(`SELECT count(*) FROM users`); n != 1 {
		t.Fatalf("%d users: a refused create wrote one", n)
	}
}

// TestVerifyCarriesLimitsInForce: the verify answer carries key_limits
// and user_limits as the gateway must enforce them — the user's own value,
// else its group's default (an unlisted group takes "default"), and the
// key held under the user.
func TestVerifyCarriesLimitsInForce(t *testing.T) {
	h := start(t, withGroupLimits(map[string]conf.GroupLimits{
		"default": {RPMLimit: 600},
		"free":    {RPMLimit: 20, TPMLimit: 40_000, ConcurrencyLimit: 2},
	}))
	changed := h.keyChanged()
	lim := func(rpm, tpm, conc int64) ratelimit.Limits {
		return ratelimit.Limits{RPM: rpm, TPM: tpm, Concurrency: conc}
	}

	// A free user with its own TPM; a key asking for more than the user has.
	userID, keyID, key := h.newUser(0, map[string]any{"group": "free", "tpm_limit": 90_000})
	st, raw := h.do("PATCH", "/api/v1/billing/keys/"+keyID, testAdmin, map[string]any{"rpm_limit": 500, "concurrency_limit": 1})
	h.must(st, raw, 200, nil)
	v := h.verify(key)
	if v.UserLimits != lim(20, 90_000, 2) || v.KeyLimits != lim(20, 90_000, 1) {
		t.Fatalf("free user: user_limits %+v key_limits %+v", v.UserLimits, v.KeyLimits)
	}
	// The wire names the gateway reads.
	_, raw = h.do("POST", "/internal/v1/keys/verify", testInternal, internalapi.VerifyKeyRequest{Key: key})
	for _, f := range []string{`"key_limits":{"rpm_limit":20,"tpm_limit":90000,"concurrency_limit":1}`,
		`"user_limits":{"rpm_limit":20,"tpm_limit":90000,"concurrency_limit":2}`} {
		if !strings.Contains(string(raw), f) {
			t.Fatalf("verify answer lacks %s: %s", f, raw)
		}
	}

	// Moving the user to an unlisted group: "default" applies, and the
	// key's own RPM (below 600) is now in force.
	st, raw = h.do("PATCH", "/api/v1/billing/users/"+userID, testAdmin, map[string]any{"group": "gold"})
	h.must(st, raw, 200, nil)
	changed("", userID)
	if v := h.verify(key); v.UserLimits != lim(600, 90_000, 0) || v.KeyLimits != lim(500, 90_000, 1) {
		t.Fatalf("gold user: user_limits %+v key_limits %+v", v.UserLimits, v.KeyLimits)
	}
	// The user's own RPM wins over the group's, in either direction.
	st, raw = h.do("PATCH", "/api/v1/billing/users/"+userID, testAdmin, map[string]any{"rpm_limit": 5000})
	h.must(st, raw, 200, nil)
	changed("", userID)
	if v := h.verify(key); v.UserLimits.RPM != 5000 || v.KeyLimits.RPM != 500 {
		t.Fatalf("own rpm: user_limits %+v key_limits %+v", v.UserLimits, v.KeyLimits)
	}
}

// admit admits one request against the key's and the user's subjects
// straight into the gateways' Redis state, as a gateway would.
func admit(t *testing.T, rs *redisstore.Store, reqID, keyID, userID string, tokens int64, key, user ratelimit.Limits) ratelimit.Ticket {
	t.Helper()
	d, err := rs.Admit(context.Background(), ratelimit.Request{ID: reqID, Tokens: tokens,
		Subjects: []ratelimit.Subject{{ID: ratelimit.KeySubject(keyID), Limits: key}, {ID: ratelimit.UserSubject(userID), Limits: user}}})
	if err != nil || !d.Allowed {
		t.Fatalf("admit %s: %+v %v", reqID, d, err)
	}
	return d.Ticket
}

// limitView is one subject in the limits part of /me, read from the wire
// by field name (every figure is an integer or null).
type limitView map[string]*int64

// String shows the figures as "rpm <limit>/<remaining> tpm …/… conc
// <limit>/<in use>", nulls as such.
func (v limitView) String() string {
	f := func(name string) string {
		if p := v[name]; p != nil {
			return fmt.Sprint(*p)
		}
		return "null"
	}
	return fmt.Sprintf("rpm %s/%s tpm %s/%s conc %s/%s", f("rpm_limit"), f("rpm_remaining"), f("tpm_limit"), f("tpm_remaining"),
		f("concurrency_limit"), f("concurrency_in_use"))
}

// me reads /me with key.
func (h *harness) me(key string) (balance *int64, keyView, userView limitView) {
	h.t.Helper()
	var body struct {
		BalanceMicros *int64               `json:"balance_micros"`
		Limits        map[string]limitView `json:"limits"`
	}
	st, raw := h.do("GET", "/api/v1/billing/me", key, nil)
	h.must(st, raw, 200, &body)
	for _, v := range []limitView{body.Limits["key"], body.Limits["user"]} {
		if r := v["reset_ms"]; r == nil || *r <= 0 || *r > 60_000 || len(v) != 7 {
			h.t.Fatalf("limits: %s", raw)
		}
	}
	return body.BalanceMicros, body.Limits["key"], body.Limits["user"]
}

// TestMeShowsLimitsAndRemaining: /me shows the limits in force for the key
// and its user and what the gateways' counters leave of them in the
// current window; with Redis unreachable it still answers, remaining null.
func TestMeShowsLimitsAndRemaining(t *testing.T) {
	re := testenv.Redis(t)
	proxy := testenv.NewProxy(t, re.Addr)
	h := start(t, func(c *conf.Config, a *App) {
		c.Limits.Groups = map[string]conf.GroupLimits{"default": {ConcurrencyLimit: 8}}
		// /me reads the gateways' counters through a proxy the test can cut.
		cl := redis.NewClient(&redis.Options{Addr: proxy.Addr, MaxRetries: -1, DialTimeout: 300 * time.Millisecond,
			ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond})
		t.Cleanup(func() { cl.Close() })
		rs, err := redisstore.New(cl, c.Redis.Prefix, redisstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		a.Rates = rs
	})
	userID, keyID, key := h.newUser(0, map[string]any{"rpm_limit": 100, "tpm_limit": 10_000})
	st, raw := h.do("PATCH", "/api/v1/billing/keys/"+keyID, testAdmin, map[string]any{"rpm_limit": 10})
	h.must(st, raw, 200, nil)
	otherKeyID, _ := h.key(userID, nil)
	keyLim := ratelimit.Limits{RPM: 10, TPM: 10_000, Concurrency: 8}
	userLim := ratelimit.Limits{RPM: 100, TPM: 10_000, Concurrency: 8}
	rs := h.app.Rates

	// Before anything ran: everything remains.
	_, kv, uv := h.me(key)
	if kv.String() != "rpm 10/10 tpm 10000/10000 conc 8/0" || uv.String() != "rpm 100/100 tpm 10000/10000 conc 8/0" {
		t.Fatalf("fresh: key %s, user %s", kv, uv)
	}

	// Three requests of 300 tokens on this key (one finished), one of 100
	// on the user's other key. The counters are per window: when a minute
	// boundary falls in between, finish everything and try again.
	for attempt := 0; ; attempt++ {
		w := ratelimit.WindowOf(time.Now())
		var tickets []ratelimit.Ticket
		for i := 0; i < 3; i++ {
			tickets = append(tickets, admit(t, rs, fmt.Sprintf("r%d-%d", attempt, i), keyID, userID, 300, keyLim, userLim))
		}
		other := admit(t, rs, fmt.Sprintf("o%d", attempt), otherKeyID, userID, 100, ratelimit.Limits{}, userLim)
		if err := rs.Finish(context.Background(), tickets[0], 300); err != nil {
			t.Fatal(err)
		}
		_, kv, uv = h.me(key)
		if ratelimit.WindowOf(time.Now()) == w {
			break
		}
		if attempt > 2 {
			t.Fatal("no window held still long enough")
		}
		for _, tk := range append(tickets, other) {
			_ = rs.Finish(context.Background(), tk, 0)
		}
	}
	if kv.String() != "rpm 10/7 tpm 10000/9100 conc 8/2" {
		t.Fatalf("key after 3 requests: %s", kv)
	}
	if uv.String() != "rpm 100/96 tpm 10000/9000 conc 8/3" {
		t.Fatalf("user after 4 requests: %s", uv)
	}

	// Redis unreachable: /me still answers, with the limits and null
	// remaining figures.
	proxy.Cut()
	balance, kv, uv := h.me(key)
	if balance == nil || kv.String() != "rpm 10/null tpm 10000/null conc 8/null" || uv.String() != "rpm 100/null tpm 10000/null conc 8/null" {
		t.Fatalf("Redis down: balance %v key %s user %s", balance, kv, uv)
	}
}

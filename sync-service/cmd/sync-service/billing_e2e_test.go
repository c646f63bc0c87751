package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/eventid"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
	"github.com/lurus-switch/lurus-switch/sync-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/sync-service/internal/synctest"
)

const e2eAdminToken = "e2e-admin-token"

var (
	billingBinOnce sync.Once
	billingBin     string
	billingBinErr  error
)

// buildBilling builds the real billing-service once per test process.
func buildBilling(t *testing.T) string {
	t.Helper()
	billingBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sync-e2e-bin-")
		if err != nil {
			billingBinErr = err
			return
		}
		billingBin = filepath.Join(dir, "billing-service")
		cmd := exec.Command("go", "build", "-o", billingBin, "./cmd/billing-service")
		cmd.Dir = filepath.Join("..", "..", "..", "billing-service")
		if out, err := cmd.CombinedOutput(); err != nil {
			billingBinErr = fmt.Errorf("go build billing-service: %v\n%s", err, out)
		}
	})
	if billingBinErr != nil {
		t.Fatal(billingBinErr)
	}
	return billingBin
}

// realBilling is a billing-service process on its own database, sharing
// the test's NATS namespace and Redis prefix.
type realBilling struct {
	t    *testing.T
	base string
}

func startBilling(t *testing.T, ne testenv.NATSEnv, re testenv.RedisEnv) *realBilling {
	t.Helper()
	bin := buildBilling(t)
	db := testenv.Postgres(t, nil, "")
	cfgPath := filepath.Join("..", "..", "..", "billing-service", "configs", "config.yaml")
	env := append(os.Environ(),
		"LURUS_ENV=test",
		"LURUS_ADMIN_TOKEN="+e2eAdminToken,
		"LURUS_INTERNAL_TOKEN="+testInternalToken,
		"LURUS_KEY_PEPPER="+synctest.Pepper, // every service hashes keys under the same pepper
		"LURUS_BILLING_ADDR=127.0.0.1:0",
		"LURUS_BILLING_DB_URL="+db.URL,
		"LURUS_REDIS_ADDR="+re.Addr,
		"LURUS_REDIS_PREFIX="+re.Prefix,
		"LURUS_NATS_URL="+ne.URL,
		"LURUS_NATS_NAMESPACE="+ne.Namespace,
	)
	migrate := exec.Command(bin, "-config", cfgPath, "migrate")
	migrate.Env = env
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("billing migrate: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-config", cfgPath, "serve")
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-waitErr:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-waitErr
		}
	})
	addrc := make(chan string, 1)
	var logTail bytes.Buffer
	var logMu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "billing-service listening" {
				addrc <- line.Addr
			}
			logMu.Lock()
			logTail.WriteString(sc.Text() + "\n")
			logMu.Unlock()
		}
	}()
	select {
	case addr := <-addrc:
		return &realBilling{t: t, base: "http://" + addr}
	case err := <-waitErr:
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("billing-service exited: %v\n%s", err, logTail.String())
	case <-time.After(60 * time.Second):
		t.Fatal("billing-service did not start")
	}
	return nil
}

// admin calls billing's admin API and decodes the JSON answer.
func (b *realBilling) admin(method, path string, body any, idemKey string) map[string]any {
	b.t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, b.base+"/api/v1/billing"+path, bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+e2eAdminToken)
	req.Header.Set("Content-Type", "application/json")
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode/100 != 2 {
		b.t.Fatalf("%s %s: %d %v", method, path, resp.StatusCode, out)
	}
	return out
}

// newUser creates a user with a balance and returns its id and a key.
func (b *realBilling) newUser(name string, balance int64) (userID, key string) {
	u := b.admin(http.MethodPost, "/users", map[string]any{"name": name, "email": name + "@example.com", "quota_limit_tokens": 1_000_000}, "")
	userID = u["id"].(string)
	b.admin(http.MethodPost, "/users/"+userID+"/topup", map[string]any{"amount_micros": balance, "note": "e2e"}, "topup-"+userID)
	k := b.admin(http.MethodPost, "/users/"+userID+"/keys", map[string]any{"name": "e2e"}, "")
	return userID, k["key"].(string)
}

// Against the real billing-service: a settlement's balance.changed reaches
// all three devices of its user and nothing reaches another user's device;
// sync_request reads billing's state; a bad key, a reused ticket and a
// foreign Origin are refused.
func TestEndToEndWithBillingService(t *testing.T) {
	ne, re := testenv.NATS(t), testenv.Redis(t)
	billing := startBilling(t, ne, re)
	s := startStackOn(t, ne, re, func(c *conf.Config) { c.Billing.URL = billing.base })

	billing.admin(http.MethodPost, "/prices", map[string]any{"model_pattern": "*", "input_micros_per_mtok": 1_000_000, "output_micros_per_mtok": 2_000_000,
		"cached_input_micros_per_mtok": 500_000, "cache_write_micros_per_mtok": 1_250_000}, "")
	alice, aliceKey := billing.newUser("alice", 10_000_000)
	bob, bobKey := billing.newUser("bob", 5_000_000)

	var devices []*websocket.Conn
	devices = append(devices, s.dial(aliceKey, url.Values{"device_id": {"phone"}}))
	devices = append(devices, s.dial(aliceKey, url.Values{"device_id": {"laptop"}}))
	status, tk := s.ticket(aliceKey, testOrigin)
	if status != http.StatusCreated {
		t.Fatalf("ticket: %d %v", status, tk)
	}
	ticketURL := url.Values{"device_id": {"browser"}, "ticket": {tk["ticket"].(string)}}
	browser, resp, err := s.tryDial("", ticketURL, http.Header{"Origin": {testOrigin}})
	if err != nil {
		t.Fatalf("ticket dial: %v %s", err, describe(resp))
	}
	devices = append(devices, browser)
	bobDevice := s.dial(bobKey, url.Values{"device_id": {"bob-phone"}})

	// Refusals, against billing's real key verification.
	for name, try := range map[string]func() (*http.Response, error){
		"bad key": func() (*http.Response, error) {
			_, r, err := s.tryDial("sk-lurus-"+strings.Repeat("Z", 40), nil, nil)
			return r, err
		},
		"reused ticket": func() (*http.Response, error) {
			_, r, err := s.tryDial("", ticketURL, http.Header{"Origin": {testOrigin}})
			return r, err
		},
		"foreign origin": func() (*http.Response, error) {
			_, r, err := s.tryDial(aliceKey, nil, http.Header{"Origin": {"https://evil.example"}})
			return r, err
		},
	} {
		r, err := try()
		if err == nil || r == nil || (r.StatusCode != http.StatusUnauthorized && r.StatusCode != http.StatusForbidden) {
			t.Fatalf("%s: not refused: %v %s", name, err, describe(r))
		}
	}

	// A settlement: the gateway's billing.usage for one request of alice's.
	now := time.Now().UTC()
	reqID := eventid.New()
	usage := events.Usage{RequestID: reqID, UserID: alice, KeyID: "", Model: "gpt-4o-mini", UpstreamModel: "gpt-4o-mini", APIFormat: "openai",
		Endpoint: "/v1/chat/completions", PromptTokens: 1000, CompletionTokens: 500, UsageSource: events.UsageSourceUpstream,
		Status: events.StatusOK, StartedAt: now.Add(-time.Second), FinishedAt: now}
	env, err := events.NewEnvelope(reqID, events.TypeBillingUsage, alice, now, usage)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.pub.Publish(context.Background(), ne.Names.Subject(events.SubjectBillingUsage), env); err != nil {
		t.Fatal(err)
	}
	for i, c := range devices {
		m := readUntilEvent(t, c, events.TypeBalanceChanged)
		var d events.BalanceChanged
		if err := json.Unmarshal(m.Data, &d); err != nil || d.Kind != "usage" || d.RequestID != reqID || d.DeltaMicros != -2000 || d.BalanceMicros != 10_000_000-2000 {
			t.Fatalf("device %d: balance.changed %s (%v)", i, m.Data, err)
		}
	}
	// bob's device got nothing of alice's: the first event it sees is its
	// own top-up, made after the settlement.
	billing.admin(http.MethodPost, "/users/"+bob+"/topup", map[string]any{"amount_micros": 1, "note": "after"}, "after-"+bob)
	e := readEvent(t, bobDevice)
	var d events.BalanceChanged
	if err := json.Unmarshal(e.Data, &d); err != nil || e.Type != events.TypeBalanceChanged || d.Kind != "topup" || d.DeltaMicros != 1 {
		t.Fatalf("bob's first event %s %s", e.Type, e.Data)
	}

	// sync_request reads billing's state.
	send(t, devices[0], `{"type":"sync_request","id":"q"}`)
	m := readUntil(t, devices[0], "sync_state")
	var st struct {
		UserID        string `json:"user_id"`
		BalanceMicros int64  `json:"balance_micros"`
		LastEventID   string `json:"last_event_id"`
	}
	if err := json.Unmarshal(m.State, &st); err != nil || st.UserID != alice || st.BalanceMicros != 10_000_000-2000 || st.LastEventID == "" {
		t.Fatalf("sync_state %s (%v)", m.State, err)
	}
}

// readUntilEvent reads until an event of type typ arrives.
func readUntilEvent(t *testing.T, c *websocket.Conn, typ string) synctest.Event {
	t.Helper()
	for {
		e := readEvent(t, c)
		if e.Type == typ {
			return e
		}
	}
}

package chaos

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

// bins holds the programs TestMain built, by name.
var bins map[string]string

// repoRoot is the repository root (the parent of this module).
var repoRoot string

// TestMain builds the services once for every scenario.
func TestMain(m *testing.M) {
	os.Exit(testenv.RunWithPrograms(m, map[string]string{
		"billing-service":  "./billing-service/cmd/billing-service",
		"provider-service": "./provider-service/cmd/provider-service",
		"gateway-service":  "./gateway-service/cmd/gateway-service",
		"mock-upstream":    "./gateway-service/cmd/mock-upstream",
		"sync-service":     "./sync-service/cmd/sync-service",
		"log-service":      "./log-service/cmd/log-service",
	}, func(p *testenv.Programs) { repoRoot, bins = p.Root, p.Path }))
}

// Development secrets shared by every service of a stack (LURUS_ENV=dev).
const (
	adminToken    = "dev-only-chaos-admin"
	internalToken = "dev-only-chaos-internal"
	keyPepper     = "dev-only-chaos-pepper"
	secretKey     = "dev-only:ZGV2LW9ubHktc2VjcmV0LWtleS0zMi1ieXRlcyEhISE="
)

// billingAckWait replaces the service's 30 s ack_wait in the suite's copy
// of billing's config: a message delivered to a killed consumer comes
// back after this, so recovery is measured in seconds, not half minutes.
const billingAckWait = "2s"

// stack is a complete private deployment: its own PostgreSQL cluster,
// nats-server and redis-server, and the services as real processes
// pointed at them. Every piece can be killed and restarted by a scenario.
type stack struct {
	t      testing.TB
	logDir string

	PG        *testenv.PGCluster
	NATS      *proc
	NATSURL   string
	Redis     *proc
	RedisAddr string

	Mock     *proc
	Provider *proc
	Billing  *proc
	Gateways []*proc
	// Sync is sync-service (nil unless stackOptions.Sync).
	Sync *proc
	// Logs is the request log (ClickHouse and log-service), nil unless
	// stackOptions.Logs.
	Logs *logStack

	MockURL, ProviderURL, BillingURL string
	GatewayURLs                      []string
	// SyncURL is sync-service's base URL (http://…).
	SyncURL string

	// BillingDB is a pool on billing's database (the invariant checker's).
	BillingDB  *pgxpool.Pool
	billingEnv []string
	billingCfg string
	gwEnv      []string

	mu sync.Mutex
	// secrets are the credentials the credential sweep looks for.
	secrets []string
	// mockUsage is the usage mock-upstream answers every request with
	// (its -usage flag), when fixed.
	mockUsage *tokens
	// baseline is every service's goroutines and descriptors after setup.
	baseline map[string]procStats
}

// stackOptions shape a stack.
type stackOptions struct {
	Gateways int      // gateway processes (default 1)
	MockArgs []string // extra mock-upstream flags
	// GatewayNATS maps the NATS URL to the one the gateways use (a fault
	// proxy's); nil: the server's own.
	GatewayNATS func(natsURL string) string
	// BillingNATS is GatewayNATS for billing-service.
	BillingNATS func(natsURL string) string
	// GatewayConfig edits the gateway's config file (written to a copy
	// passed with -config); nil: configs/config.yaml unchanged.
	GatewayConfig func(yaml string) string
	// Sync starts sync-service too; SyncConfig, when set, edits its
	// config file like GatewayConfig.
	Sync       bool
	SyncConfig func(yaml string) string
	// Logs adds the request log: a private ClickHouse and log-service
	// (about 2 s more at start), and checkInvariants then checks that
	// ClickHouse counts each request once.
	Logs bool
	// OutboxDir is gateway i's outbox directory; nil: a new temporary
	// directory each.
	OutboxDir func(i int) string
}

// startStack starts the private servers, migrates, and starts every
// service, waiting until each is ready.
func startStack(t testing.TB, o stackOptions) *stack {
	t.Helper()
	if o.Gateways == 0 {
		o.Gateways = 1
	}
	s := &stack{t: t, logDir: t.TempDir(), secrets: []string{adminToken, internalToken, keyPepper, secretKey},
		mockUsage: fixedUsage(o.MockArgs)}
	if dir := os.Getenv("CHAOS_LOG_DIR"); dir != "" { // keep logs for a post-mortem
		s.logDir = filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_"))
		_ = os.MkdirAll(s.logDir, 0o755)
	}
	s.PG = testenv.NewPGCluster(t)
	s.NATS, s.NATSURL = natsServer(t, s.logDir)
	s.Redis, s.RedisAddr = redisServer(t, s.logDir)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, s.PG.URL)
	if err != nil {
		t.Fatalf("private postgres: %v", err)
	}
	for _, db := range []string{"lurus_billing", "lurus_provider"} {
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
			t.Fatalf("create %s: %v", db, err)
		}
	}
	admin.Close(ctx)
	dbURL := func(db string) string { return strings.Replace(s.PG.URL, "/postgres?", "/"+db+"?", 1) }

	common := []string{
		"LURUS_ENV=dev",
		"LURUS_ADMIN_TOKEN=" + adminToken,
		"LURUS_INTERNAL_TOKEN=" + internalToken,
		"LURUS_KEY_PEPPER=" + keyPepper,
		"LURUS_SECRET_KEY=" + secretKey,
		"LURUS_REDIS_ADDR=" + s.RedisAddr,
		"LURUS_REDIS_PREFIX=lurus:",
		"LURUS_NATS_URL=" + s.NATSURL,
		"LURUS_NATS_NAMESPACE=",
		"LURUS_LOG_LEVEL=warn",
	}
	mockAddr, providerAddr, billingAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	s.MockURL, s.ProviderURL, s.BillingURL = "http://"+mockAddr, "http://"+providerAddr, "http://"+billingAddr

	s.Mock = newProc(t, s.logDir, "mock-upstream", bins["mock-upstream"], "", nil, append([]string{"-addr", mockAddr}, o.MockArgs...)...)
	s.Mock.Start()

	providerEnv := append(append([]string{}, common...), "LURUS_PROVIDER_ADDR="+providerAddr,
		"LURUS_PROVIDER_DB_URL="+dbURL("lurus_provider"), "LURUS_PROVIDER_REDIS_PREFIX=lurus:provider:")
	s.migrate("provider-service", providerEnv)
	s.Provider = newProc(t, s.logDir, "provider-service", bins["provider-service"], filepath.Join(repoRoot, "provider-service"), providerEnv, "serve")
	s.Provider.Start()

	s.billingCfg = s.billingConfig()
	s.billingEnv = append(append([]string{}, common...), "LURUS_BILLING_ADDR="+billingAddr, "LURUS_BILLING_DB_URL="+dbURL("lurus_billing"))
	if o.BillingNATS != nil {
		s.billingEnv = append(s.billingEnv, "LURUS_NATS_URL="+o.BillingNATS(s.NATSURL))
	}
	s.migrate("billing-service", s.billingEnv)
	s.Billing = newProc(t, s.logDir, "billing-service", bins["billing-service"], filepath.Join(repoRoot, "billing-service"),
		s.billingEnv, "serve", "-config", s.billingCfg)
	s.Billing.Start()

	for _, u := range []string{s.MockURL + "/health", s.ProviderURL + "/ready", s.BillingURL + "/ready"} {
		s.waitReady(u)
	}
	if o.Logs {
		s.startLogs(common)
	}
	s.gwEnv = append(append([]string{}, common...), "LURUS_BILLING_URL="+s.BillingURL, "LURUS_PROVIDER_URL="+s.ProviderURL,
		// Unused lease remainders go back quickly, so the checker can
		// wait for every hold to be released.
		"LURUS_GATEWAY_LEASE_IDLE=1s")
	if o.GatewayNATS != nil {
		s.gwEnv = append(s.gwEnv, "LURUS_NATS_URL="+o.GatewayNATS(s.NATSURL))
	}
	gwArgs := []string{"serve"}
	if o.GatewayConfig != nil {
		gwArgs = append(gwArgs, "-config", s.editedConfig("gateway-service", o.GatewayConfig))
	}
	for i := 0; i < o.Gateways; i++ {
		addr := freeAddr(t)
		outbox := filepath.Join(t.TempDir(), "outbox")
		if o.OutboxDir != nil {
			outbox = o.OutboxDir(i)
		}
		env := append(append([]string{}, s.gwEnv...), "LURUS_GATEWAY_ADDR="+addr, "LURUS_GATEWAY_OUTBOX_DIR="+outbox)
		g := newProc(t, s.logDir, fmt.Sprintf("gateway-%d", i+1), bins["gateway-service"], filepath.Join(repoRoot, "gateway-service"), env, gwArgs...)
		g.Start()
		s.Gateways = append(s.Gateways, g)
		s.GatewayURLs = append(s.GatewayURLs, "http://"+addr)
	}
	for _, u := range s.GatewayURLs {
		s.waitReady(u + "/ready")
	}
	if o.Sync {
		s.startSync(common, o.SyncConfig)
	}
	pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer pcancel()
	s.BillingDB, err = pgxpool.New(pctx, dbURL("lurus_billing"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.BillingDB.Close)
	// Scenario 17: registered last, so it runs first when the test ends,
	// with the scenario's traffic done and every server still up.
	t.Cleanup(func() {
		r := s.sweepCredentials()
		for _, f := range r.Found {
			t.Errorf("credential sweep: %s", f)
		}
		t.Logf("RESULT scenario=17 log_bytes=%d nats_messages=%d redis_keys=%d clickhouse_rows=%d credentials_found=%d",
			r.LogBytes, r.NATSMsgs, r.RedisKeys, r.ClickHouseRows, len(r.Found))
	})
	return s
}

// startSync starts sync-service on its own port against the stack's
// billing, NATS and Redis, and waits until it is ready.
func (s *stack) startSync(common []string, edit func(string) string) {
	s.t.Helper()
	addr := freeAddr(s.t)
	s.SyncURL = "http://" + addr
	env := append(append([]string{}, common...), "LURUS_SYNC_ADDR="+addr, "LURUS_BILLING_URL="+s.BillingURL)
	args := []string{"serve"}
	if edit != nil {
		args = append(args, "-config", s.editedConfig("sync-service", edit))
	}
	s.Sync = newProc(s.t, s.logDir, "sync-service", bins["sync-service"], filepath.Join(repoRoot, "sync-service"), env, args...)
	s.Sync.Start()
	s.waitReady(s.SyncURL + "/ready")
}

// billingConfig writes billing's own config with a short ack_wait and
// returns its path.
func (s *stack) billingConfig() string {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "billing-service", "configs", "config.yaml"))
	if err != nil {
		s.t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "ack_wait: 30s", "ack_wait: "+billingAckWait, 1)
	if cfg == string(b) {
		s.t.Fatal("billing config has no `ack_wait: 30s` line to shorten; update billingConfig")
	}
	path := filepath.Join(s.t.TempDir(), "billing.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		s.t.Fatal(err)
	}
	return path
}

// migrate applies a service's migrations.
func (s *stack) migrate(name string, env []string) {
	s.t.Helper()
	args := []string{"migrate"}
	if name == "billing-service" {
		args = append(args, "-config", s.billingCfg)
	}
	cmd := exec.Command(bins[name], args...)
	cmd.Dir = filepath.Join(repoRoot, name)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("%s migrate: %v\n%s", name, err, out)
	}
}

// RestartBilling starts billing-service again after a kill or stop and
// waits until it is ready; it returns how long that took.
func (s *stack) RestartBilling() time.Duration {
	s.t.Helper()
	start := time.Now()
	s.Billing.Start()
	s.waitReady(s.BillingURL + "/ready")
	return time.Since(start)
}

// RebuildCache runs `billing-service rebuild-cache` against the stack.
func (s *stack) RebuildCache() {
	s.t.Helper()
	cmd := exec.Command(bins["billing-service"], "rebuild-cache", "-config", s.billingCfg)
	cmd.Dir = filepath.Join(repoRoot, "billing-service")
	cmd.Env = append(os.Environ(), s.billingEnv...)
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("rebuild-cache: %v\n%s", err, out)
	}
}

func (s *stack) waitReady(url string) { s.t.Helper(); testenv.WaitReady(s.t, url) }

// admin calls an admin route with the admin token, decodes the JSON answer
// into out (when not nil) and fails the test on a status other than want.
func (s *stack) admin(method, url string, in, out any, want int, hdr ...string) {
	s.t.Helper()
	testenv.CallJSON(s.t, method, url, adminToken, in, out, want, hdr...)
}

// Prices of the suite (micro-USD per million tokens).
const (
	priceIn  = 1_000_000
	priceOut = 2_000_000
)

// tenant is a user with a key, as setup creates it.
type tenant struct {
	UserID string
	Key    string
}

// tenantOptions shape setup.
type tenantOptions struct {
	TopupMicros  int64
	CreditMicros int64
	// ProviderHeaders are sent upstream by the provider (mock controls).
	ProviderHeaders map[string]string
}

// setup creates an OpenAI-type provider on the mock, a price for every
// model and a user with a balance and a key, and waits until every
// gateway relays for it.
func (s *stack) setup(o tenantOptions) tenant {
	s.t.Helper()
	p := map[string]any{"name": "mock-openai", "type": "openai", "base_url": s.MockURL + "/v1", "keys": []string{"sk-mock-openai"},
		"models": []string{"gpt-4o-mini"}, "allow_private_network": true, "enabled": true, "weight": 1}
	if o.ProviderHeaders != nil {
		p["headers"] = o.ProviderHeaders
	}
	s.addSecret("sk-mock-openai")
	s.admin(http.MethodPost, s.ProviderURL+"/api/v1/providers", p, nil, http.StatusCreated)
	s.admin(http.MethodPost, s.BillingURL+"/api/v1/billing/prices", map[string]any{"model_pattern": "*",
		"input_micros_per_mtok": priceIn, "output_micros_per_mtok": priceOut,
		"cached_input_micros_per_mtok": priceIn / 2, "cache_write_micros_per_mtok": priceIn}, nil, http.StatusCreated)
	var user struct {
		ID string `json:"id"`
	}
	s.admin(http.MethodPost, s.BillingURL+"/api/v1/billing/users", map[string]any{"name": "chaos", "email": "chaos@example.com"}, &user, http.StatusCreated)
	if o.TopupMicros > 0 {
		s.admin(http.MethodPost, s.BillingURL+"/api/v1/billing/users/"+user.ID+"/topup",
			map[string]any{"amount_micros": o.TopupMicros, "note": "chaos"}, nil, http.StatusCreated, "Idempotency-Key", "chaos-topup-"+user.ID)
	}
	if o.CreditMicros > 0 {
		s.admin(http.MethodPatch, s.BillingURL+"/api/v1/billing/users/"+user.ID, map[string]any{"credit_limit_micros": o.CreditMicros}, nil, http.StatusOK)
	}
	var key struct {
		Key string `json:"key"`
	}
	s.admin(http.MethodPost, s.BillingURL+"/api/v1/billing/users/"+user.ID+"/keys", map[string]any{"name": "chaos"}, &key, http.StatusCreated)
	s.addSecret(key.Key)
	tn := tenant{UserID: user.ID, Key: key.Key}
	defer s.takeBaseline()
	for _, gw := range s.GatewayURLs {
		s.eventually(30*time.Second, "gateway "+gw+" lists the model", func() bool {
			req, _ := http.NewRequest(http.MethodGet, gw+"/v1/models", nil)
			req.Header.Set("Authorization", "Bearer "+tn.Key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode == 200 && strings.Contains(string(b), "gpt-4o-mini")
		})
	}
	return tn
}

// fixedUsage reads mock-upstream's -usage flag ("prompt=1,completion=20").
func fixedUsage(args []string) *tokens {
	for i := 0; i+1 < len(args); i++ {
		if args[i] != "-usage" {
			continue
		}
		var u tokens
		if _, err := fmt.Sscanf(args[i+1], "prompt=%d,completion=%d", &u.Prompt, &u.Completion); err == nil {
			return &u
		}
	}
	return nil
}

// eventually polls cond until it holds or within passes.
func (s *stack) eventually(within time.Duration, what string, cond func() bool) {
	s.t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out after %s waiting: %s", within, what)
		}
	}
}

// reply is what the client saw of one relayed request.
type reply struct {
	Status    int
	RequestID string
	Body      []byte
	Err       error
}

// httpClient is the load generator's client: enough idle connections for
// the scenarios' concurrency.
var httpClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0}, Timeout: 60 * time.Second}

// chat sends one non-streaming chat completion through gw.
func chat(gw, key string, maxTokens int) reply {
	body := fmt.Sprintf(`{"model":"gpt-4o-mini","max_tokens":%d,"messages":[{"role":"user","content":"hi"}]}`, maxTokens)
	req, _ := http.NewRequest(http.MethodPost, gw+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return reply{Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id"), Body: b, Err: err}
}

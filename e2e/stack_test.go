package e2e

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

// bins holds the binaries TestMain built, by name.
var bins map[string]string

// repoRoot is the repository root (the parent of this module).
var repoRoot string

// TestMain builds the programs once for every test of the package.
func TestMain(m *testing.M) {
	os.Exit(testenv.RunWithPrograms(m, map[string]string{
		"billing-service":  "./billing-service/cmd/billing-service",
		"provider-service": "./provider-service/cmd/provider-service",
		"gateway-service":  "./gateway-service/cmd/gateway-service",
		"mock-upstream":    "./gateway-service/cmd/mock-upstream",
		"baseline-proxy":   "./gateway-service/cmd/baseline-proxy",
	}, func(p *testenv.Programs) { repoRoot, bins = p.Root, p.Path }))
}

// Secrets every service of a test stack shares (development values, so
// LURUS_ENV=dev).
const (
	adminToken    = "dev-only-e2e-admin"
	internalToken = "dev-only-e2e-internal"
)

// stack is one running set of services, isolated from every other run.
type stack struct {
	t           testing.TB
	gateway     string
	billing     string
	provider    string
	mock        string
	redisPrefix string
	// providerHeaders are sent upstream by every provider setup creates.
	providerHeaders map[string]string
	// procs are the running services by name (the benchmark pauses
	// billing-service's consumer with them).
	procs map[string]*os.Process
	// gwEnv is the gateway's environment, for a second gateway process.
	gwEnv []string
}

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr(t testing.TB) string { t.Helper(); return testenv.FreeAddr(t) }

// startStack starts mock-upstream, provider-service, billing-service and
// gateway-service (each migrated first where it has a database) and
// waits until every one is ready. gatewayEnv adds environment to the
// gateway.
func startStack(t testing.TB, gatewayEnv ...string) *stack {
	t.Helper()
	rd := testenv.Redis(t)
	ne := testenv.NATS(t)
	billingDB := testenv.Postgres(t, nil, "")
	providerDB := testenv.Postgres(t, nil, "")
	s := &stack{t: t, redisPrefix: rd.Prefix, procs: map[string]*os.Process{}}
	logDir := t.TempDir()
	common := []string{
		"LURUS_ENV=dev",
		"LURUS_ADMIN_TOKEN=" + adminToken,
		"LURUS_INTERNAL_TOKEN=" + internalToken,
		"LURUS_KEY_PEPPER=dev-only-e2e-pepper",
		"LURUS_SECRET_KEY=dev-only:ZGV2LW9ubHktc2VjcmV0LWtleS0zMi1ieXRlcyEhISE=",
		"LURUS_REDIS_ADDR=" + rd.Addr,
		"LURUS_NATS_URL=" + ne.URL,
		"LURUS_NATS_NAMESPACE=" + ne.Namespace,
		"LURUS_LOG_LEVEL=warn",
	}
	mockAddr, providerAddr, billingAddr, gatewayAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	s.mock, s.provider, s.billing, s.gateway = "http://"+mockAddr, "http://"+providerAddr, "http://"+billingAddr, "http://"+gatewayAddr

	s.run(logDir, "mock-upstream", "", nil, "-addr", mockAddr)
	providerEnv := append(common, "LURUS_PROVIDER_ADDR="+providerAddr, "LURUS_PROVIDER_DB_URL="+providerDB.URL,
		"LURUS_PROVIDER_REDIS_PREFIX="+rd.Prefix+"provider:")
	s.migrate("provider-service", providerEnv)
	s.run(logDir, "provider-service", "provider-service", providerEnv, "serve")
	billingEnv := append(common, "LURUS_BILLING_ADDR="+billingAddr, "LURUS_BILLING_DB_URL="+billingDB.URL,
		"LURUS_REDIS_PREFIX="+rd.Prefix)
	s.migrate("billing-service", billingEnv)
	s.run(logDir, "billing-service", "billing-service", billingEnv, "serve")
	gwEnv := append(append(common, "LURUS_GATEWAY_ADDR="+gatewayAddr, "LURUS_BILLING_URL="+s.billing,
		"LURUS_PROVIDER_URL="+s.provider, "LURUS_REDIS_PREFIX="+rd.Prefix,
		"LURUS_GATEWAY_OUTBOX_DIR="+filepath.Join(t.TempDir(), "outbox"),
		// Unused lease remainders go back quickly, so a test (or the
		// benchmark) can wait for reserved_micros to reach 0.
		"LURUS_GATEWAY_LEASE_IDLE=1s"), gatewayEnv...)
	for _, u := range []string{s.mock + "/health", s.provider + "/ready", s.billing + "/ready"} {
		s.waitReady(u)
	}
	s.gwEnv = gwEnv
	s.run(logDir, "gateway-service", "gateway-service", gwEnv, "serve")
	s.waitReady(s.gateway + "/ready")
	return s
}

// migrate applies a service's migrations. Services run in their own
// directory, so each finds its configs/config.yaml by default.
func (s *stack) migrate(name string, env []string) {
	s.t.Helper()
	cmd := exec.Command(bins[name], "migrate")
	cmd.Dir = filepath.Join(repoRoot, name)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("%s migrate: %v\n%s", name, err, out)
	}
}

// run starts a program; it is stopped with SIGTERM when the test ends,
// and its log is printed if the test failed.
func (s *stack) run(logDir, name, dir string, env []string, args ...string) {
	s.t.Helper()
	logPath := filepath.Join(logDir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(bins[name], args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = filepath.Join(repoRoot, dir)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", name, err)
	}
	s.procs[name] = cmd.Process
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		lf.Close()
		if s.t.Failed() {
			b, _ := os.ReadFile(logPath)
			s.t.Logf("--- %s log (last 4 KiB):\n%s", name, tail(b, 4096))
		}
	})
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func (s *stack) waitReady(url string) { s.t.Helper(); testenv.WaitReady(s.t, url) }

// admin calls an admin route with the admin token and decodes the JSON
// answer into out (when not nil); it fails the test on a status other
// than want.
func (s *stack) admin(method, url string, in, out any, want int, hdr ...string) {
	s.t.Helper()
	testenv.CallJSON(s.t, method, url, adminToken, in, out, want, hdr...)
}

// tenant is what setup creates: providers on the mock, a user with a
// balance, a key and a price for every model.
type tenant struct {
	userID string
	key    string
}

// Price used for every model in the tests (micro-USD per million tokens).
const (
	priceIn     = 1_000_000
	priceOut    = 2_000_000
	priceCached = 500_000
	priceWrite  = 1_250_000
	topup       = 50_000_000
)

func (s *stack) setup() tenant {
	s.t.Helper()
	for _, p := range []map[string]any{
		{"name": "mock-openai", "type": "openai", "base_url": s.mock + "/v1", "keys": []string{"sk-mock-openai"},
			"models": []string{"gpt-4o", "gpt-4o-mini", "gpt-3.5-turbo-instruct", "text-embedding-3-small"}},
		{"name": "mock-anthropic", "type": "anthropic", "base_url": s.mock, "keys": []string{"sk-mock-anthropic"},
			"models": []string{"claude-*"}},
		{"name": "mock-gemini", "type": "gemini", "base_url": s.mock, "keys": []string{"mock-gemini-key"},
			"models": []string{"gemini-*"}},
	} {
		p["allow_private_network"] = true
		if s.providerHeaders != nil {
			p["headers"] = s.providerHeaders
		}
		p["enabled"] = true
		p["weight"] = 1
		s.admin(http.MethodPost, s.provider+"/api/v1/providers", p, nil, http.StatusCreated)
	}
	var user struct {
		ID string `json:"id"`
	}
	s.admin(http.MethodPost, s.billing+"/api/v1/billing/users", map[string]any{"name": "e2e", "email": "e2e@example.com"}, &user, http.StatusCreated)
	s.admin(http.MethodPost, s.billing+"/api/v1/billing/users/"+user.ID+"/topup",
		map[string]any{"amount_micros": topup, "note": "e2e"}, nil, http.StatusCreated, "Idempotency-Key", "e2e-topup-1")
	s.admin(http.MethodPost, s.billing+"/api/v1/billing/prices", map[string]any{"model_pattern": "*",
		"input_micros_per_mtok": priceIn, "output_micros_per_mtok": priceOut,
		"cached_input_micros_per_mtok": priceCached, "cache_write_micros_per_mtok": priceWrite}, nil, http.StatusCreated)
	var key struct {
		Key string `json:"key"`
	}
	s.admin(http.MethodPost, s.billing+"/api/v1/billing/users/"+user.ID+"/keys", map[string]any{"name": "e2e"}, &key, http.StatusCreated)
	tn := tenant{userID: user.ID, key: key.Key}
	// The gateway learns of providers and prices through NATS; wait until
	// it lists the models and prices a request.
	s.eventually("gateway sees providers", func() bool {
		status, b := getWithKey(s.gateway+"/v1/models", tn.key)
		return status == 200 && strings.Contains(string(b), "gpt-4o-mini")
	})
	return tn
}

// getWithKey GETs url with an end-user key (status 0 when unreachable).
func getWithKey(url, key string) (int, []byte) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (s *stack) eventually(what string, cond func() bool) {
	s.t.Helper()
	for i := 0; i < 1200; i++ {
		if cond() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	s.t.Fatalf("timed out waiting: %s", what)
}

// ledgerEntry is one row of GET /api/v1/billing/users/{id}/ledger.
type ledgerEntry struct {
	Kind         string `json:"kind"`
	AmountMicros int64  `json:"amount_micros"`
	RequestID    string `json:"request_id"`
}

// debit waits for the ledger entry of request id and returns its amount
// (negative for a debit).
func (s *stack) debit(userID, requestID string) int64 {
	s.t.Helper()
	var found *ledgerEntry
	s.eventually("ledger entry for "+requestID, func() bool {
		var page struct {
			Items []ledgerEntry `json:"items"`
		}
		s.admin(http.MethodGet, s.billing+"/api/v1/billing/users/"+userID+"/ledger?limit=200", nil, &page, http.StatusOK)
		for i := range page.Items {
			if page.Items[i].RequestID == requestID {
				found = &page.Items[i]
				return true
			}
		}
		return false
	})
	return found.AmountMicros
}

// cost prices token counts with the test price, independently of the
// pricing package: ceil(Σ tokens × price / 1e6).
func cost(prompt, completion, cached, write int64) int64 {
	num := (prompt-cached-write)*priceIn + completion*priceOut + cached*priceCached + write*priceWrite
	return (num + 999_999) / 1_000_000
}

// pause stops a running service's process (SIGSTOP) until resume; the
// benchmark uses it to keep billing's settlement off the cores it measures.
func (s *stack) pause(name string) {
	s.t.Helper()
	if err := s.procs[name].Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatalf("pause %s: %v", name, err)
	}
	s.t.Cleanup(func() { _ = s.procs[name].Signal(syscall.SIGCONT) })
}

// resume continues a paused service.
func (s *stack) resume(name string) {
	s.t.Helper()
	if err := s.procs[name].Signal(syscall.SIGCONT); err != nil {
		s.t.Fatalf("resume %s: %v", name, err)
	}
}

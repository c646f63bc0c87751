package main

import (
	"bytes"
	"context"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
	"github.com/lurus-switch/lurus-switch/provider-service/migrations"
)

// TestMain lets the tests run the real main in a subprocess: the test
// binary re-executes itself with PROVIDER_SERVICE_RUN_MAIN=1.
func TestMain(m *testing.M) {
	if os.Getenv("PROVIDER_SERVICE_RUN_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// command runs provider-service with args and env (on top of a minimal
// environment) using the real configs/config.yaml.
func command(t *testing.T, env map[string]string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], append(args, "-config", "../../configs/config.yaml")...)
	cmd.Env = []string{"PROVIDER_SERVICE_RUN_MAIN=1", "PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

func baseEnv(h *harness, addr string) map[string]string {
	return map[string]string{
		"LURUS_PROVIDER_DB_URL": h.PG.URL, "LURUS_REDIS_ADDR": h.RD.Addr, "LURUS_PROVIDER_REDIS_PREFIX": h.RD.Prefix,
		"LURUS_NATS_URL": h.NT.URL, "LURUS_NATS_NAMESPACE": h.NT.Namespace, "LURUS_PROVIDER_ADDR": addr,
		"LURUS_ADMIN_TOKEN": adminToken, "LURUS_INTERNAL_TOKEN": internalToken, "LURUS_SECRET_KEY": testSecretKey("t1", 1),
	}
}

// TestServeRefusesWrongSecretKey: the stored keys were sealed under t1; a
// process started with another key for t1, or without t1 at all, exits
// with a message naming t1.
func TestServeRefusesWrongSecretKey(t *testing.T) {
	h := newHarness(t)
	h.create(demo("sealed", upstreamKey))
	tests := []struct {
		name, key, previous, want string
	}{
		{"same key id, other key", testSecretKey("t1", 9), "", `key id "t1" does not decrypt`},
		{"rotated without previous", testSecretKey("t2", 2), "", `key id "t1", which is neither`},
		{"dev value outside dev", "dev-only:" + testSecretKey("x", 1)[2:], "", "development-only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := baseEnv(h, testenv.FreeAddr(t))
			env["LURUS_SECRET_KEY"] = tt.key
			var stderr bytes.Buffer
			cmd := command(t, env, "serve")
			cmd.Stderr = &stderr
			err := cmd.Run()
			if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 {
				t.Fatalf("exit %d (%v), stderr %s", code, err, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("stderr %q lacks %q", stderr.String(), tt.want)
			}
		})
	}
}

// TestServeRotateAndGracefulStop runs the binary: rotate-keys re-encrypts
// under a new key, serve starts with only the new key, answers, and exits
// 0 on SIGTERM.
func TestServeRotateAndGracefulStop(t *testing.T) {
	h := newHarness(t)
	p := h.create(demo("rotating", upstreamKey))
	addr := testenv.FreeAddr(t)
	env := baseEnv(h, addr)
	env["LURUS_SECRET_KEY"] = testSecretKey("t2", 2)
	env["LURUS_SECRET_KEYS_PREVIOUS"] = testSecretKey("t1", 1)
	if out, err := command(t, env, "rotate-keys").CombinedOutput(); err != nil || !strings.Contains(string(out), `"rows":1`) {
		t.Fatalf("rotate-keys: %v\n%s", err, out)
	}
	delete(env, "LURUS_SECRET_KEYS_PREVIOUS")
	var stdout bytes.Buffer
	cmd := command(t, env, "serve")
	cmd.Stdout, cmd.Stderr = &stdout, &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	base := "http://" + addr
	for {
		resp, err := http.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v\n%s", err, stdout.String())
		case <-ctx.Done():
			t.Fatalf("serve never answered /health\n%s", stdout.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	req, _ := http.NewRequest("GET", base+"/internal/v1/providers/snapshot", nil)
	req.Header.Set("Authorization", "Bearer "+internalToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(body.String(), upstreamKey) || !strings.Contains(body.String(), p.ID) {
		t.Fatalf("snapshot after rotation: %d %s", resp.StatusCode, body.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exit after SIGTERM: %v\n%s", err, stdout.String())
		}
	case <-ctx.Done():
		t.Fatalf("serve did not stop on SIGTERM\n%s", stdout.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "provider-service stopped") || strings.Contains(out, upstreamKey) {
		t.Fatalf("log: %s", out)
	}
}

// TestMigrateCommand applies the migrations to an empty database, and is
// a no-op the second time.
func TestMigrateCommand(t *testing.T) {
	db := testenv.Postgres(t, nil, "")
	env := map[string]string{"LURUS_PROVIDER_DB_URL": db.URL}
	for i, want := range []string{`"applied":3`, `"applied":0`} {
		out, err := command(t, env, "migrate").CombinedOutput()
		if err != nil || !strings.Contains(string(out), want) {
			t.Fatalf("run %d: %v\n%s", i, err, out)
		}
	}
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM snapshot_version`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("snapshot_version rows %d, %v", n, err)
	}
	out, _ := command(t, env, "bogus").CombinedOutput()
	if !strings.Contains(string(out), `unknown command "bogus"`) {
		t.Fatalf("bogus command: %s", out)
	}
}

// TestMigratePassthroughOnlyKeepsProvidersTranslatable upgrades a database
// holding a provider from before passthrough_only: the migration adds the
// column and the existing provider stays reachable by translation.
func TestMigratePassthroughOnlyKeepsProvidersTranslatable(t *testing.T) {
	first, err := fs.ReadFile(migrations.FS, "001_providers.sql")
	if err != nil {
		t.Fatal(err)
	}
	db := testenv.Postgres(t, fstest.MapFS{"001_providers.sql": {Data: first}}, ".")
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO providers (id, name, type, base_url, models)
		VALUES ('prv_old', 'old', 'openai', 'https://api.openai.com/v1', '{gpt-4o}')`); err != nil {
		t.Fatal(err)
	}
	out, err := command(t, map[string]string{"LURUS_PROVIDER_DB_URL": db.URL}, "migrate").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"applied":2`) { // 002 and 003
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	var only bool
	if err := db.Pool.QueryRow(ctx, `SELECT passthrough_only FROM providers WHERE id = 'prv_old'`).Scan(&only); err != nil || only {
		t.Fatalf("passthrough_only of an existing provider = %v, %v", only, err)
	}
}

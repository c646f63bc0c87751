package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// childArgsEnv carries the arguments of main when this test binary is
// re-run as the service process.
const childArgsEnv = "LOG_SERVICE_TEST_MAIN_ARGS"

// TestServeRefusesCleanly runs `log-service serve` as a real process in
// the configurations newApp refuses, and checks each exits 1 with the
// reason on stderr: no panic, no goroutine dump. A nil cleanup called on
// the way out once turned the dev-secret refusal into a crash.
func TestServeRefusesCleanly(t *testing.T) {
	if args, ok := os.LookupEnv(childArgsEnv); ok {
		os.Exit(run(strings.Fields(args)))
	}
	cases := []struct {
		name string
		env  []string
		want string
	}{
		{
			name: "dev secret outside dev",
			env:  []string{"LURUS_ENV=prod", "LURUS_ADMIN_TOKEN=dev-only-admin-token", "LURUS_INTERNAL_TOKEN=dev-only-internal-token"},
			want: "log-service serve: config: LURUS_ADMIN_TOKEN holds a development-only value",
		},
		{
			name: "dev ClickHouse password outside dev",
			env: []string{"LURUS_ENV=prod", "LURUS_ADMIN_TOKEN=a-real-admin-token", "LURUS_INTERNAL_TOKEN=a-real-internal-token", "LURUS_KEY_PEPPER=a-real-key-pepper",
				"LURUS_CLICKHOUSE_PASSWORD=dev-only-clickhouse"},
			want: "log-service serve: config: LURUS_CLICKHOUSE_PASSWORD holds a development-only value",
		},
		{
			// Fails after tracing and ClickHouse are open: the cleanup
			// that closes them runs on the error path.
			name: "NATS unreachable",
			env: []string{"LURUS_ENV=dev", "LURUS_ADMIN_TOKEN=dev-only-admin-token", "LURUS_INTERNAL_TOKEN=dev-only-internal-token",
				"LURUS_NATS_URL=nats://127.0.0.1:1"},
			want: "log-service serve: nats nats://127.0.0.1:1:",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestServeRefusesCleanly$")
			cmd.Env = append(os.Environ(), "LURUS_CLICKHOUSE_PASSWORD=", "LURUS_LOG_ADDR=127.0.0.1:0",
				childArgsEnv+"=serve -config ../../configs/config.yaml")
			cmd.Env = append(cmd.Env, tc.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Errorf("exit: %v, want status 1", err)
			}
			out := stderr.String()
			if !strings.Contains(out, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, out)
			}
			for _, crash := range []string{"panic", "goroutine "} {
				if strings.Contains(out, crash) {
					t.Errorf("stderr shows a crash (%q):\n%s", crash, out)
				}
			}
		})
	}
}

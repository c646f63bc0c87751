package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

// examplesDir is doc/examples from this package.
var examplesDir = filepath.Join("..", "..", "..", "doc", "examples")

// The JavaScript example (doc/examples/js) runs under Node's built-in
// WebSocket with the browser flow (ticket + Origin) against the service.
func TestJavaScriptExample(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if testenv.Required() {
			t.Fatal("node not found")
		}
		t.Skip("node not installed")
	}
	s := startStack(t, nil)
	key := s.user("usr_js")
	cmd := exec.Command(node, "--experimental-websocket", filepath.Join(examplesDir, "js", "lurus-sync.mjs"))
	cmd.Env = append(os.Environ(), "LURUS_SYNC_URL="+s.base, "LURUS_API_KEY="+key, "DEVICE_ID=node-1", "ORIGIN="+testOrigin, "MAX_EVENTS=4")
	runExample(t, s, "usr_js", cmd)
}

// The Go example (doc/examples/go, its own module) builds and follows the
// same scenario with header authentication.
func TestGoExample(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "sync-client")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join(examplesDir, "go")
	build.Env = append(os.Environ(), "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the Go example: %v\n%s", err, out)
	}
	s := startStack(t, nil)
	key := s.user("usr_go")
	cmd := exec.Command(bin, "-url", s.ws, "-key", key, "-device", "go-1", "-max-events", "4")
	runExample(t, s, "usr_go", cmd)
}

// runExample starts an example client that exits after four events, feeds
// it two events, forces a reconnect (key.changed closes with 4001), sends
// one event around the reconnect and one after it, and checks the client
// printed exactly the four events in order, over two connections.
func runExample(t *testing.T, s *stack, user string, cmd *exec.Cmd) {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	lines := make(chan map[string]any, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
		close(lines)
		done <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	var got []string
	opens := 0
	next := func(kind string) map[string]any {
		t.Helper()
		for {
			select {
			case m, ok := <-lines:
				if !ok {
					t.Fatalf("example ended waiting for %s; events %v; stderr:\n%s", kind, got, stderr.String())
				}
				switch m["kind"] {
				case "open":
					opens++
				case "event":
					got = append(got, m["id"].(string))
				}
				if m["kind"] == kind {
					return m
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("no %s line; events %v; stderr:\n%s", kind, got, stderr.String())
			}
		}
	}
	next("open")
	var sent []string
	for i := 0; i < 2; i++ {
		sent = append(sent, s.publish(user, events.TypeBalanceChanged, events.BalanceChanged{BalanceMicros: int64(i)}).ID)
		next("event")
	}
	if err := natsbus.PublishCore(s.nats.Conn, s.nats.Names.Subject(events.SubjectKeyChanged), events.KeyChanged{KeyID: "key_" + user, UserID: user}); err != nil {
		t.Fatal(err)
	}
	sent = append(sent, s.publish(user, events.TypeQuotaUpdated, events.QuotaUpdated{QuotaUsedTokens: 3}).ID)
	for opens < 2 {
		next("open")
	}
	sent = append(sent, s.publish(user, events.TypeUsageRecorded, events.UsageRecorded{RequestID: "r4"}).ID)
	for len(got) < 4 {
		next("event")
	}
	if err := <-done; err != nil {
		t.Fatalf("example exited: %v\n%s", err, stderr.String())
	}
	if strings.Join(got, ",") != strings.Join(sent, ",") {
		t.Fatalf("example printed events %v, want exactly %v", got, sent)
	}
}

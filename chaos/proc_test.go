package chaos

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

// proc is one program the suite runs and injures: started with a fixed
// command line and environment, it can be SIGKILLed, stopped with SIGTERM
// and started again, always with the same arguments (so on the same port).
// Its output of every run is appended to one log file.
type proc struct {
	t    testing.TB
	name string
	path string
	args []string
	env  []string
	dir  string
	log  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	// Starts counts the runs (1 after the first Start).
	starts int
}

// newProc prepares a program; Start runs it. It is stopped when the test
// ends, and the end of its log is printed if the test failed.
func newProc(t testing.TB, logDir, name, path, dir string, env []string, args ...string) *proc {
	p := &proc{t: t, name: name, path: path, args: args, env: env, dir: dir, log: filepath.Join(logDir, name+".log")}
	t.Cleanup(func() {
		_ = p.Stop(15 * time.Second)
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			if len(b) > 4096 {
				b = b[len(b)-4096:]
			}
			t.Logf("--- %s log (last 4 KiB):\n%s", name, b)
		}
	})
	return p
}

// Start runs the program (it must not be running).
func (p *proc) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		p.t.Fatalf("%s: started twice", p.name)
	}
	lf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	fmt.Fprintf(lf, "=== start %d at %s\n", p.starts+1, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = lf, lf
	// Its own process group: a terminal's ^C reaches the test, not it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); lf.Close(); close(done) }()
	p.cmd, p.done = cmd, done
	p.starts++
}

// Kill sends SIGKILL and waits until the process is gone.
func (p *proc) Kill() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

// Stop sends SIGTERM and waits up to grace for a clean exit, then kills.
func (p *proc) Stop(grace time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		err = fmt.Errorf("%s ignored SIGTERM for %s", p.name, grace)
	}
	p.cmd = nil
	return err
}

// Running reports whether the process is alive.
func (p *proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr(t testing.TB) string { t.Helper(); return testenv.FreeAddr(t) }

// waitTCP waits until addr accepts connections.
func waitTCP(t testing.TB, what, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s at %s not accepting connections: %v", what, addr, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// natsServer starts a private nats-server with JetStream on its own port
// and store directory.
func natsServer(t testing.TB, logDir string) (*proc, string) {
	t.Helper()
	bin := lookBin(t, "nats-server", "/usr/sbin/nats-server")
	addr := freeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	p := newProc(t, logDir, "nats-server", bin, "", nil,
		"-js", "-a", host, "-p", port, "-sd", filepath.Join(t.TempDir(), "jetstream"))
	p.Start()
	waitTCP(t, "nats-server", addr)
	return p, "nats://" + addr
}

// redisServer starts a private redis-server on its own port, without
// persistence: a restart comes back empty, as after a flush.
func redisServer(t testing.TB, logDir string) (*proc, string) {
	t.Helper()
	bin := lookBin(t, "redis-server", "/usr/bin/redis-server")
	addr := freeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	p := newProc(t, logDir, "redis-server", bin, t.TempDir(), nil,
		"--bind", host, "--port", port, "--save", "", "--appendonly", "no", "--protected-mode", "no")
	p.Start()
	waitTCP(t, "redis-server", addr)
	return p, addr
}

// lookBin finds a server program on PATH or at its Debian location.
func lookBin(t testing.TB, name, fallback string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if _, err := os.Stat(fallback); err == nil {
		return fallback
	}
	t.Fatalf("%s not found (PATH, %s)", name, fallback)
	return ""
}

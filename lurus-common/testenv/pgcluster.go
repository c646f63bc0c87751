//go:build unix

package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PGCluster is a PostgreSQL cluster owned by one test: its own data and
// socket directory and its own loopback port, made by initdb and run by
// pg_ctl. Unlike Postgres (a database on the shared server), a test may
// kill, stop and restart it, which is what the fault suite needs. When the
// test runs as root the server runs as the postgres OS user (initdb and
// postgres refuse root). Host connections are trusted: loopback only.
type PGCluster struct {
	// URL connects as the superuser postgres to the database postgres.
	URL  string
	Port int

	t    testing.TB
	bin  string
	dir  string
	data string
	sock string
	cred *syscall.Credential
}

// PGClusterOptions change how NewPGClusterWith initializes a cluster; the
// zero value is NewPGCluster's.
type PGClusterOptions struct {
	// Superuser is the superuser initdb creates (default postgres).
	Superuser string
	// Password is the superuser's password (initdb --pwfile); "": none.
	Password string
	// HostAuth is the pg_hba method of TCP connections (default trust).
	// Connections on the socket are always trusted.
	HostAuth string
}

// NewPGCluster runs initdb and starts the server; it is stopped (mode
// immediate) and removed when the test ends. Without server binaries the
// test skips, or fails under LURUS_REQUIRE_INTEGRATION=1.
func NewPGCluster(t testing.TB) *PGCluster { return NewPGClusterWith(t, PGClusterOptions{}) }

// NewPGClusterWith is NewPGCluster with a chosen superuser, password and
// TCP authentication, as a deployment's initdb would make it. URL carries
// the superuser and password.
func NewPGClusterWith(t testing.TB, o PGClusterOptions) *PGCluster {
	t.Helper()
	if o.Superuser == "" {
		o.Superuser = "postgres"
	}
	if o.HostAuth == "" {
		o.HostAuth = "trust"
	}
	c := &PGCluster{t: t, bin: postgresBinDir()}
	if c.bin == "" {
		unavailable(t, "PostgreSQL server binaries (initdb)", os.ErrNotExist)
	}
	dir, err := os.MkdirTemp("", "lurus-pgcluster-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	c.dir, c.data, c.sock = dir, filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	if err := os.Mkdir(c.sock, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("testenv: running as root needs a postgres OS user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		for _, p := range []string{dir, c.sock} {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.Port = ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	login := url.User(o.Superuser)
	args := []string{"-D", c.data, "--username", o.Superuser, "--auth-local", "trust", "--auth-host", o.HostAuth,
		"--encoding", "UTF8", "--no-sync"}
	if o.Password != "" {
		login = url.UserPassword(o.Superuser, o.Password)
		pwfile := filepath.Join(dir, "pwfile")
		if err := c.WriteFile(pwfile, []byte(o.Password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--pwfile", pwfile)
	}
	c.URL = (&url.URL{Scheme: "postgres", User: login, Host: "127.0.0.1:" + strconv.Itoa(c.Port), Path: "/postgres",
		RawQuery: "sslmode=disable"}).String()
	if out, err := c.Exec(nil, "initdb", args...); err != nil {
		t.Fatalf("testenv: initdb: %v\n%s", err, out)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop("immediate"); err != nil {
			t.Error(err)
		}
	})
	return c
}

// Start starts the server and waits until it accepts connections.
func (c *PGCluster) Start() error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", c.Port, c.sock)
	logFile := filepath.Join(c.dir, "postgres.log")
	if out, err := c.Exec(nil, "pg_ctl", "-D", c.data, "-o", opts, "-l", logFile, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(logFile)
		return fmt.Errorf("testenv: pg_ctl start: %v\n%s\n%s", err, out, tailBytes(log, 4096))
	}
	return nil
}

// Stop stops the server with pg_ctl's mode (smart, fast or immediate) and
// waits until it is gone. Stopping a stopped server is not an error.
func (c *PGCluster) Stop(mode string) error {
	if !c.Running() {
		return nil
	}
	if out, err := c.Exec(nil, "pg_ctl", "-D", c.data, "-m", mode, "-w", "-t", "60", "stop"); err != nil {
		return fmt.Errorf("testenv: pg_ctl stop: %v\n%s", err, out)
	}
	return nil
}

// Kill sends SIGKILL to the postmaster, as a crash would, and waits until
// its port is free; the children notice and exit on their own. Start
// then runs crash recovery.
func (c *PGCluster) Kill() error {
	pid, err := c.postmasterPID()
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("testenv: kill postmaster: %w", err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil && !c.accepting() {
			return nil
		}
	}
	return fmt.Errorf("testenv: postmaster %d still alive after SIGKILL", pid)
}

// Running reports whether a postmaster holds the data directory.
func (c *PGCluster) Running() bool {
	pid, err := c.postmasterPID()
	return err == nil && syscall.Kill(pid, 0) == nil
}

// Log returns the end of the server's log (for failure messages).
func (c *PGCluster) Log() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
	return string(tailBytes(b, 4096))
}

func (c *PGCluster) postmasterPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(c.data, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("testenv: postmaster.pid: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(first))
}

func (c *PGCluster) accepting() bool {
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(c.Port), 200*time.Millisecond)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// Dir is the cluster's own directory (data, socket, log); the server's
// OS user owns it.
func (c *PGCluster) Dir() string { return c.dir }

// DataDir is the data directory (PGDATA).
func (c *PGCluster) DataDir() string { return c.data }

// SocketDir is the directory of the server's Unix socket (PGHOST for a
// socket connection).
func (c *PGCluster) SocketDir() string { return c.sock }

// Exec runs prog as the server's OS user in Dir with only PATH (the server
// binaries first), HOME=Dir, LC_ALL=C, an absent PGPASSFILE and env, and
// returns its combined output. A prog without a slash is one of the
// server's binaries (psql, pg_ctl, …).
func (c *PGCluster) Exec(env map[string]string, prog string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if !strings.Contains(prog, "/") {
		prog = filepath.Join(c.bin, prog)
	}
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = c.dir
	cmd.Env = []string{"PATH=" + c.bin + ":/usr/local/bin:/usr/bin:/bin", "HOME=" + c.dir,
		"PGPASSFILE=" + filepath.Join(c.dir, "no-pgpass"), "LC_ALL=C"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// WriteFile writes a file that the server's OS user owns, with exactly
// mode (not narrowed by the umask).
func (c *PGCluster) WriteFile(path string, body []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, body, mode); err != nil {
		return err
	}
	if err := os.Chmod(path, mode); err != nil {
		return err
	}
	if c.cred != nil {
		return os.Chown(path, int(c.cred.Uid), int(c.cred.Gid))
	}
	return nil
}

// postgresBinDir is the newest /usr/lib/postgresql/<version>/bin holding
// initdb, else the directory of initdb on PATH, else "".
func postgresBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

func tailBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

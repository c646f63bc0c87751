//go:build unix

package deploy

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests in this file run the PostgreSQL init files of each deployment
// (K3S postgres-init ConfigMap, Compose /docker-entrypoint-initdb.d mounts)
// the way the postgres image runs them on a fresh data directory, against a
// real server the test starts on its own port and data directory, and then
// log in as every service does. A script that only looks right (psql
// variables inside -c, a file run before the role exists) fails here and
// not on a fresh cluster.

// initFile is one file of /docker-entrypoint-initdb.d.
type initFile struct {
	Name string // its name in the directory; the image runs them sorted by it
	Body []byte
}

// pgDeployment is what a deployment gives its postgres container.
type pgDeployment struct {
	Env   map[string]string // the container's environment, secrets resolved
	Files []initFile
	// URLs are the service database URLs to log in with; their host is
	// replaced by the test server's.
	URLs []string
}

// initDatabases are the databases init-db.sql creates, owned by lurus.
var initDatabases = []string{"lurus_billing", "lurus_provider", "lurus_sync"}

func TestK3SPostgresInit(t *testing.T) {
	d := k3sPostgresDeployment(t)
	// The migrate init containers of these two loop when the login fails.
	for _, db := range []string{"lurus_provider", "lurus_billing"} {
		if !slices.ContainsFunc(d.URLs, func(u string) bool { return strings.Contains(u, "/"+db+"?") }) {
			t.Errorf("no K3S container logs in to %s", db)
		}
	}
	runPostgresDeployment(t, d)

	// The password reaches the role byte for byte, whatever it holds: a
	// value with quotes, a backslash, a psql variable reference and shell
	// syntax is neither interpreted by the shell nor by psql.
	t.Run("hostile password", func(t *testing.T) {
		const pw = `it's "x" \\ :'pw' $(id) ; -- %`
		old := d.Env["LURUS_DB_PASSWORD"]
		d.Env = cloneEnv(d.Env)
		d.Env["LURUS_DB_PASSWORD"] = pw
		urls := make([]string, 0, len(d.URLs))
		for _, raw := range d.URLs {
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if p, _ := u.User.Password(); p != old {
				t.Fatalf("%s does not use LURUS_DB_PASSWORD", redactURL(raw))
			}
			u.User = url.UserPassword(u.User.Username(), pw)
			urls = append(urls, u.String())
		}
		d.URLs = urls
		runPostgresDeployment(t, d)
	})
}

func TestComposePostgresInit(t *testing.T) {
	c := loadCompose(t)
	pg, ok := c.Services["postgres"]
	if !ok {
		t.Fatal("compose has no postgres service")
	}
	d := pgDeployment{Env: cloneEnv(pg.Environment)}
	for _, v := range pg.Volumes {
		src, target, _ := strings.Cut(v, ":")
		target, _, _ = strings.Cut(target, ":")
		dir, name := filepath.Split(target)
		if filepath.Clean(dir) != "/docker-entrypoint-initdb.d" {
			continue
		}
		d.Files = append(d.Files, initFile{Name: name, Body: readFile(t, filepath.Clean(src))})
	}
	for name, s := range c.Services {
		for k, v := range s.env(t) {
			if dbURLVar.MatchString(k) {
				d.URLs = append(d.URLs, serviceDBURL(t, name+" "+k, v))
			}
		}
	}
	runPostgresDeployment(t, d)
}

// dbURLVar names the variables holding a service's database URL.
var dbURLVar = regexp.MustCompile(`^LURUS_[A-Z]+_DB_URL$`)

// k3sPostgresDeployment reads the postgres StatefulSet, the postgres-init
// ConfigMap and the lurus-secrets Secret from the dev overlay (the only
// build that carries a Secret; its postgres is the base's), and the
// database URLs of every Deployment's containers and init containers.
func k3sPostgresDeployment(t *testing.T) pgDeployment {
	t.Helper()
	m := kustomize(t, "deploy/k3s/overlays/dev")
	sec, ok := m.find("Secret", "lurus-secrets")
	if !ok {
		t.Fatal("the dev overlay has no lurus-secrets")
	}
	secrets := map[string]string{}
	for k, v := range sec.Data {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			t.Fatalf("lurus-secrets %s: %v", k, err)
		}
		secrets[k] = string(b)
	}
	ss, ok := m.find("StatefulSet", "postgres")
	if !ok {
		t.Fatal("no StatefulSet postgres")
	}
	spec := ss.podSpec(t)
	if len(spec.Containers) != 1 {
		t.Fatalf("StatefulSet postgres: want one container, got %d", len(spec.Containers))
	}
	d := pgDeployment{Env: containerEnv(t, m, spec.Containers[0], secrets)}
	init, ok := m.configMap("postgres-init")
	if !ok {
		t.Fatal("no ConfigMap postgres-init")
	}
	for name, body := range init.Data {
		d.Files = append(d.Files, initFile{Name: name, Body: []byte(body)})
	}
	for _, dep := range m.ofKind("Deployment") {
		ps := dep.podSpec(t)
		for _, c := range append(ps.InitContainers, ps.Containers...) {
			for k, v := range containerEnv(t, m, c, secrets) {
				if dbURLVar.MatchString(k) {
					d.URLs = append(d.URLs, serviceDBURL(t, dep.Metadata.Name+"/"+c.Name+" "+k, v))
				}
			}
		}
	}
	return d
}

// k8sVarRef is a $(NAME) reference in an env value, which Kubernetes
// expands from the variables defined before it.
var k8sVarRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// containerEnv is a container's environment as the kubelet builds it, with
// the Secret's real values: podEnv's (ConfigMaps resolved, references
// checked), then secrets filled in and env applied again in order, with
// $(NAME) expanded.
func containerEnv(t *testing.T, m manifests, c container, secrets map[string]string) map[string]string {
	t.Helper()
	env := podEnv(t, m, c)
	for _, ef := range c.EnvFrom {
		if ef.SecretRef != nil {
			for k, v := range secrets {
				env[k] = v
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = k8sVarRef.ReplaceAllStringFunc(e.Value, func(ref string) string {
				if v, ok := env[ref[2:len(ref)-1]]; ok {
					return v
				}
				return ref // Kubernetes leaves unknown references as they are
			})
		case e.ValueFrom.SecretKeyRef != nil:
			v, ok := secrets[e.ValueFrom.SecretKeyRef.Key]
			if !ok {
				t.Fatalf("%s: %s reads secret key %s, missing from the build", c.Name, e.Name, e.ValueFrom.SecretKeyRef.Key)
			}
			env[e.Name] = v
		default:
			t.Fatalf("%s: %s: unsupported valueFrom", c.Name, e.Name)
		}
	}
	return env
}

// serviceDBURL checks that a service database URL points at the postgres
// Service on 5432 (the test server takes its place) and returns it.
func serviceDBURL(t *testing.T, where, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	if u.Host != "postgres:5432" {
		t.Errorf("%s: host %q, want the postgres Service on 5432", where, u.Host)
	}
	return raw
}

func cloneEnv(env map[string]string) map[string]string {
	out := make(map[string]string, len(env))
	for k, v := range env {
		out[k] = v
	}
	return out
}

// redactURL hides the password of a database URL in test output.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	return u.Redacted()
}

// runPostgresDeployment starts a fresh server as the image does for d,
// runs d's init files, and logs in with every URL of d.
func runPostgresDeployment(t *testing.T, d pgDeployment) {
	t.Helper()
	if len(d.Files) == 0 {
		t.Fatal("the deployment gives postgres no init files")
	}
	if len(d.URLs) == 0 {
		t.Fatal("no service database URL found")
	}
	// The image's defaults: POSTGRES_DB is POSTGRES_USER, host connections
	// use password_encryption's method (scram-sha-256) unless
	// POSTGRES_HOST_AUTH_METHOD says otherwise.
	env := cloneEnv(d.Env)
	if env["POSTGRES_USER"] == "" {
		env["POSTGRES_USER"] = "postgres"
	}
	if env["POSTGRES_DB"] == "" {
		env["POSTGRES_DB"] = env["POSTGRES_USER"]
	}
	hostAuth := env["POSTGRES_HOST_AUTH_METHOD"]
	if hostAuth == "" {
		hostAuth = "scram-sha-256"
	}
	pg := startPostgres(t, env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], hostAuth)
	pg.runInitFiles(t, d.Files, env)

	out, err := pg.run(map[string]string{"PGHOST": pg.sock, "PGPORT": strconv.Itoa(pg.port)}, filepath.Join(pg.bin, "psql"),
		"-X", "-A", "-t", "-U", env["POSTGRES_USER"], "-d", "postgres", "-c",
		"SELECT datname FROM pg_database WHERE pg_get_userbyid(datdba) = 'lurus' ORDER BY datname")
	if err != nil {
		t.Fatalf("list databases: %v\n%s", err, out)
	}
	if got := strings.Fields(out); !slices.Equal(got, initDatabases) {
		t.Errorf("databases owned by lurus: %v, want %v", got, initDatabases)
	}

	addr := "127.0.0.1:" + strconv.Itoa(pg.port)
	urls := slices.Clone(d.URLs)
	slices.Sort(urls)
	for _, raw := range slices.Compact(urls) {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		u.Host = addr
		dsn := u.String()
		wantDB := strings.TrimPrefix(u.Path, "/")
		out, err := pg.psql(dsn, "SELECT current_user || ' ' || current_database()")
		if err != nil {
			t.Errorf("log in with %s: %v\n%s", redactURL(dsn), err, out)
			continue
		}
		if got, want := strings.TrimSpace(out), u.User.Username()+" "+wantDB; got != want {
			t.Errorf("log in with %s: got %q, want %q", redactURL(dsn), got, want)
		}
		if hostAuth == "trust" {
			continue
		}
		// The login above proved something only if a wrong password fails.
		u.User = url.UserPassword(u.User.Username(), "not-the-password")
		if out, err := pg.psql(u.String(), "SELECT 1"); err == nil || !strings.Contains(out, "password authentication failed") {
			t.Errorf("a wrong password for %s was not refused (err %v): %s", redactURL(dsn), err, out)
		}
	}
}

// pgServer is a throwaway PostgreSQL server owned by one test: its own data
// and socket directory under a temporary directory and its own loopback
// port, never the machine's shared server.
type pgServer struct {
	bin  string // directory of initdb, pg_ctl, psql
	dir  string
	data string
	sock string
	port int
	cred *syscall.Credential // the postgres OS user when the test runs as root
}

// postgresBin finds the PostgreSQL server binaries: the newest
// /usr/lib/postgresql/<version>/bin, else initdb on PATH. Without them the
// test skips, unless LURUS_REQUIRE_INTEGRATION=1 (CI), where it fails.
func postgresBin(t *testing.T) string {
	t.Helper()
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
	if os.Getenv("LURUS_REQUIRE_INTEGRATION") == "1" {
		t.Fatal("no PostgreSQL server binaries (initdb) found (LURUS_REQUIRE_INTEGRATION=1)")
	}
	t.Skip("no PostgreSQL server binaries (initdb) found")
	return ""
}

// startPostgres runs initdb as the image does (superuser and password from
// the environment, trust on the local socket, hostAuth on TCP) and starts
// the server on a free loopback port. Cleanup stops it and removes it.
func startPostgres(t *testing.T, superuser, password, hostAuth string) *pgServer {
	t.Helper()
	pg := &pgServer{bin: postgresBin(t)}
	dir, err := os.MkdirTemp("", "lurus-pginit-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	pg.dir, pg.data, pg.sock = dir, filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	if err := os.Mkdir(pg.sock, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs a postgres OS user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		pg.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		for _, p := range []string{dir, pg.sock} {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	pg.port = freePort(t)

	args := []string{"-D", pg.data, "--username", superuser, "--auth-local", "trust", "--auth-host", hostAuth, "--encoding", "UTF8", "--no-sync"}
	if password != "" {
		pwfile := filepath.Join(dir, "pwfile")
		pg.writeFile(t, pwfile, []byte(password+"\n"), 0o600)
		args = append(args, "--pwfile", pwfile)
	}
	if out, err := pg.run(nil, filepath.Join(pg.bin, "initdb"), args...); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	// Only the test's loopback port and socket; the entrypoint's temporary
	// server listens on the socket only, which the scripts use.
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", pg.port, pg.sock)
	logFile := filepath.Join(dir, "postgres.log")
	if out, err := pg.run(nil, filepath.Join(pg.bin, "pg_ctl"), "-D", pg.data, "-o", opts, "-l", logFile, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(logFile)
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	t.Cleanup(func() {
		if out, err := pg.run(nil, filepath.Join(pg.bin, "pg_ctl"), "-D", pg.data, "-m", "immediate", "-w", "stop"); err != nil {
			t.Errorf("pg_ctl stop: %v\n%s", err, out)
		}
	})
	return pg
}

// writeFile writes a file the server's OS user can read.
func (pg *pgServer) writeFile(t *testing.T, path string, body []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, body, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode passes through umask
		t.Fatal(err)
	}
	if pg.cred != nil {
		if err := os.Chown(path, int(pg.cred.Uid), int(pg.cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
}

// run runs a program as the server's OS user with exactly env (plus PATH
// and HOME), and returns its combined output.
func (pg *pgServer) run(env map[string]string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = pg.dir
	cmd.Env = []string{"PATH=" + pg.bin + ":/usr/local/bin:/usr/bin:/bin", "HOME=" + pg.dir, "PGPASSFILE=" + filepath.Join(pg.dir, "no-pgpass"), "LC_ALL=C"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if pg.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// psql runs one query over TCP with a connection URL, without any
// password file or environment password, and prints bare rows.
func (pg *pgServer) psql(dsn, query string) (string, error) {
	return pg.run(nil, filepath.Join(pg.bin, "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", query, dsn)
}

// runInitFiles does what docker-entrypoint.sh's docker_process_init_files
// does on a fresh data directory: every file in name order; an executable
// *.sh is run, any other *.sh is sourced by sh, *.sql goes to psql -f as
// the superuser. The image ignores other names; here they fail, since a
// file that never runs is a mistake. The environment is the container's
// (PGDATA replaced by the test's), with PGPASSWORD set as the entrypoint
// sets it and PGHOST/PGPORT pointing at the test server's socket.
func (pg *pgServer) runInitFiles(t *testing.T, files []initFile, containerEnv map[string]string) {
	t.Helper()
	env := cloneEnv(containerEnv)
	env["PGDATA"] = pg.data
	env["PGHOST"] = pg.sock
	env["PGPORT"] = strconv.Itoa(pg.port)
	if env["PGPASSWORD"] == "" {
		env["PGPASSWORD"] = env["POSTGRES_PASSWORD"]
	}
	initDir := filepath.Join(pg.dir, "docker-entrypoint-initdb.d")
	if err := os.Mkdir(initDir, 0o755); err != nil {
		t.Fatal(err)
	}
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b initFile) int { return strings.Compare(a.Name, b.Name) })
	for _, f := range files {
		path := filepath.Join(initDir, f.Name)
		// The ConfigMap volume's defaultMode is 0755; a Compose bind mount
		// keeps the file's mode, which for a .sql file does not matter.
		pg.writeFile(t, path, f.Body, 0o755)
		var out string
		var err error
		switch {
		case strings.HasSuffix(f.Name, ".sh"):
			out, err = pg.run(env, path)
		case strings.HasSuffix(f.Name, ".sql"):
			out, err = pg.run(env, filepath.Join(pg.bin, "psql"), "-v", "ON_ERROR_STOP=1", "--username", env["POSTGRES_USER"],
				"--no-password", "--no-psqlrc", "--dbname", env["POSTGRES_DB"], "-f", path)
		default:
			t.Fatalf("%s: the postgres image ignores this file", f.Name)
		}
		if err != nil {
			t.Fatalf("init file %s failed: %v\n%s", f.Name, err, out)
		}
	}
}

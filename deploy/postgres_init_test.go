//go:build unix

package deploy

import (
	"encoding/base64"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
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

	out, err := pg.Exec(map[string]string{"PGHOST": pg.SocketDir(), "PGPORT": strconv.Itoa(pg.Port)}, "psql",
		"-X", "-A", "-t", "-U", env["POSTGRES_USER"], "-d", "postgres", "-c",
		"SELECT datname FROM pg_database WHERE pg_get_userbyid(datdba) = 'lurus' ORDER BY datname")
	if err != nil {
		t.Fatalf("list databases: %v\n%s", err, out)
	}
	if got := strings.Fields(out); !slices.Equal(got, initDatabases) {
		t.Errorf("databases owned by lurus: %v, want %v", got, initDatabases)
	}

	addr := "127.0.0.1:" + strconv.Itoa(pg.Port)
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
// and socket directory and its own loopback port, never the machine's
// shared server.
type pgServer struct{ *testenv.PGCluster }

// startPostgres runs initdb as the image does (superuser and password from
// the environment, trust on the local socket, hostAuth on TCP) and starts
// the server on a free loopback port. Cleanup stops it and removes it.
// Without PostgreSQL server binaries the test skips, unless
// LURUS_REQUIRE_INTEGRATION=1 (CI), where it fails.
func startPostgres(t *testing.T, superuser, password, hostAuth string) pgServer {
	t.Helper()
	return pgServer{testenv.NewPGClusterWith(t, testenv.PGClusterOptions{Superuser: superuser, Password: password, HostAuth: hostAuth})}
}

// psql runs one query over TCP with a connection URL, without any
// password file or environment password, and prints bare rows.
func (pg pgServer) psql(dsn, query string) (string, error) {
	return pg.Exec(nil, "psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", query, dsn)
}

// runInitFiles does what docker-entrypoint.sh's docker_process_init_files
// does on a fresh data directory: every file in name order; an executable
// *.sh is run, any other *.sh is sourced by sh, *.sql goes to psql -f as
// the superuser. The image ignores other names; here they fail, since a
// file that never runs is a mistake. The environment is the container's
// (PGDATA replaced by the test's), with PGPASSWORD set as the entrypoint
// sets it and PGHOST/PGPORT pointing at the test server's socket.
func (pg pgServer) runInitFiles(t *testing.T, files []initFile, containerEnv map[string]string) {
	t.Helper()
	env := cloneEnv(containerEnv)
	env["PGDATA"] = pg.DataDir()
	env["PGHOST"] = pg.SocketDir()
	env["PGPORT"] = strconv.Itoa(pg.Port)
	if env["PGPASSWORD"] == "" {
		env["PGPASSWORD"] = env["POSTGRES_PASSWORD"]
	}
	initDir := filepath.Join(pg.Dir(), "docker-entrypoint-initdb.d")
	if err := os.Mkdir(initDir, 0o755); err != nil {
		t.Fatal(err)
	}
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b initFile) int { return strings.Compare(a.Name, b.Name) })
	for _, f := range files {
		path := filepath.Join(initDir, f.Name)
		// The ConfigMap volume's defaultMode is 0755; a Compose bind mount
		// keeps the file's mode, which for a .sql file does not matter.
		if err := pg.WriteFile(path, f.Body, 0o755); err != nil {
			t.Fatal(err)
		}
		var out string
		var err error
		switch {
		case strings.HasSuffix(f.Name, ".sh"):
			out, err = pg.Exec(env, path)
		case strings.HasSuffix(f.Name, ".sql"):
			out, err = pg.Exec(env, "psql", "-v", "ON_ERROR_STOP=1", "--username", env["POSTGRES_USER"],
				"--no-password", "--no-psqlrc", "--dbname", env["POSTGRES_DB"], "-f", path)
		default:
			t.Fatalf("%s: the postgres image ignores this file", f.Name)
		}
		if err != nil {
			t.Fatalf("init file %s failed: %v\n%s", f.Name, err, out)
		}
	}
}

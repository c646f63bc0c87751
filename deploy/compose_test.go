package deploy

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const composeFile = "docker-compose.dev.yaml"

// composeFileModel is the part of the Compose specification the stack uses.
type composeFileModel struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       *composeBuild     `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	EnvFile     stringList        `yaml:"env_file"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	Profiles []string `yaml:"profiles"`
	Restart  string   `yaml:"restart"`
}

type composeBuild struct {
	Context    string            `yaml:"context"`
	Dockerfile string            `yaml:"dockerfile"`
	Target     string            `yaml:"target"`
	Args       map[string]string `yaml:"args"`
}

// stringList accepts a string or a list of strings.
type stringList []string

func (s *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = []string{n.Value}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}

func loadCompose(t testing.TB) composeFileModel {
	t.Helper()
	var c composeFileModel
	if err := yaml.Unmarshal(readFile(t, composeFile), &c); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	if len(c.Services) == 0 {
		t.Fatalf("%s: no services", composeFile)
	}
	return c
}

// env is the environment a Compose service's containers get: its env
// files, then its environment section.
func (s composeService) env(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range s.EnvFile {
		for k, v := range parseEnvFile(t, f) {
			out[k] = v
		}
	}
	for k, v := range s.Environment {
		out[k] = v
	}
	return out
}

// buildArg returns an argument with the Dockerfile's defaults applied
// (MODULE defaults to SERVICE).
func (b *composeBuild) buildArg(name string) string {
	if v, ok := b.Args[name]; ok {
		return v
	}
	if name == "MODULE" {
		return b.Args["SERVICE"]
	}
	return ""
}

func TestComposeBinaries(t *testing.T) {
	c := loadCompose(t)
	for _, b := range binaries {
		t.Run(b.Name, func(t *testing.T) {
			s, ok := c.Services[b.Name]
			if !ok {
				t.Fatalf("%s: no service %s", composeFile, b.Name)
			}
			if len(s.Profiles) != 0 {
				t.Errorf("%s runs only in profiles %v", b.Name, s.Profiles)
			}
			if s.Build == nil {
				t.Fatalf("%s: no build section", b.Name)
			}
			if s.Build.Context != "." {
				t.Errorf("build context %q, want the repository root", s.Build.Context)
			}
			if !exists(t, s.Build.Dockerfile) {
				t.Errorf("dockerfile %q does not exist", s.Build.Dockerfile)
			}
			if got := s.Build.buildArg("SERVICE"); got != b.Name {
				t.Errorf("build arg SERVICE=%q, want %q", got, b.Name)
			}
			if got := s.Build.buildArg("MODULE"); got != b.Module {
				t.Errorf("build arg MODULE=%q, want %q", got, b.Module)
			}
			if got := s.Build.buildArg("PORT"); got != strconv.Itoa(b.Port) {
				t.Errorf("build arg PORT=%q, want %d", got, b.Port)
			}
			wantPort := fmt.Sprintf("127.0.0.1:%d:%d", b.Port, b.Port)
			if !slices.Equal(s.Ports, []string{wantPort}) {
				t.Errorf("ports %v, want [%s]", s.Ports, wantPort)
			}

			env := s.env(t)
			for _, name := range requiredEnv(t, b) {
				v, ok := env[name]
				if !ok {
					t.Errorf("%s is not set (needed by %s)", name, b.Name)
					continue
				}
				if isLoopback(v) {
					t.Errorf("%s=%q points at the container's own loopback", name, v)
				}
			}
			listenVar := "MOCK_UPSTREAM_ADDR"
			if b.Config {
				cfg := loadServiceConfig(t, b)
				listenVar = cfg.Listen.Name
				// The config the container reads must parse as YAML.
				yamlKeys(t, cfg.Path+" in the Compose environment", []byte(cfg.Text), env)
			}
			checkListen(t, listenVar, env[listenVar], b.Port)
		})
	}
}

// checkListen wants a wildcard listen address on port.
func checkListen(t *testing.T, name, v string, port int) {
	t.Helper()
	host, p, err := net.SplitHostPort(v)
	if err != nil {
		t.Errorf("%s=%q: %v", name, v, err)
		return
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		t.Errorf("%s=%q: listen on all interfaces inside a container", name, v)
	}
	if p != strconv.Itoa(port) {
		t.Errorf("%s=%q: port %s, want %d", name, v, p, port)
	}
}

func TestComposeMigrations(t *testing.T) {
	c := loadCompose(t)
	for _, b := range binaries {
		var migrators []string
		for name, s := range c.Services {
			if slices.Equal(s.Command, []string{"migrate"}) && s.Build != nil && s.Build.buildArg("SERVICE") == b.Name {
				migrators = append(migrators, name)
				if s.Image != c.Services[b.Name].Image {
					t.Errorf("%s uses image %q, %s uses %q: migrate with the image you serve", name, s.Image, b.Name, c.Services[b.Name].Image)
				}
				if s.Restart != "no" {
					t.Errorf("%s: a one-shot needs restart: \"no\", got %q", name, s.Restart)
				}
			}
		}
		switch {
		case !b.Migrate && len(migrators) > 0:
			t.Errorf("%s has no migrate subcommand but %v runs it", b.Name, migrators)
		case b.Migrate && len(migrators) != 1:
			t.Errorf("%s: want one migrate one-shot, found %v", b.Name, migrators)
		case b.Migrate:
			dep, ok := c.Services[b.Name].DependsOn[migrators[0]]
			if !ok || dep.Condition != "service_completed_successfully" {
				t.Errorf("%s must depend on %s with condition service_completed_successfully", b.Name, migrators[0])
			}
		}
	}
}

func TestComposeDependencies(t *testing.T) {
	c := loadCompose(t)
	valid := []string{"service_started", "service_healthy", "service_completed_successfully"}
	for name, s := range c.Services {
		for dep, d := range s.DependsOn {
			target, ok := c.Services[dep]
			if !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
				continue
			}
			if !slices.Contains(valid, d.Condition) {
				t.Errorf("%s -> %s: condition %q", name, dep, d.Condition)
			}
			if d.Condition == "service_healthy" && target.Healthcheck == nil {
				t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
			if len(target.Profiles) > 0 && !slices.Equal(target.Profiles, s.Profiles) {
				t.Errorf("%s depends on %s, which runs only in profiles %v", name, dep, target.Profiles)
			}
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s publishes %q: publish on 127.0.0.1 only", name, p)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, "./") && !exists(t, src) {
				t.Errorf("%s mounts %s, which does not exist", name, src)
			}
			if !strings.HasPrefix(src, "./") && !strings.HasPrefix(src, "/") {
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("%s uses volume %s, not declared under volumes", name, src)
				}
			}
		}
	}
	// Infrastructure: every server a service uses is there, healthy-checked,
	// and every service waits for what its environment points at.
	for _, infra := range []string{"postgres", "redis", "nats", "clickhouse"} {
		s, ok := c.Services[infra]
		if !ok {
			t.Errorf("no %s service", infra)
			continue
		}
		if s.Healthcheck == nil || len(s.Healthcheck.Test) == 0 {
			t.Errorf("%s has no healthcheck", infra)
		}
	}
	if nats := c.Services["nats"]; !slices.Contains(nats.Command, "-js") {
		t.Errorf("nats runs without JetStream: command %v", nats.Command)
	}
	if pg := c.Services["postgres"]; !slices.ContainsFunc(pg.Volumes, func(v string) bool {
		return strings.HasPrefix(v, "./init-db.sql:/docker-entrypoint-initdb.d/")
	}) {
		t.Errorf("postgres does not run init-db.sql")
	}
	for _, b := range binaries {
		s := c.Services[b.Name]
		env := s.env(t)
		// The variables this binary reads.
		used := map[string]bool{"MOCK_UPSTREAM_ADDR": !b.Config}
		if b.Config {
			for _, r := range loadServiceConfig(t, b).Refs {
				used[r.Name] = true
			}
		}
		for k := range s.Environment {
			used[k] = true
		}
		for k := range used {
			v := env[k]
			host := addressHost(v)
			if host == "" {
				continue
			}
			target, ok := c.Services[host]
			if !ok {
				t.Errorf("%s: %s=%q names host %q, which is no Compose service", b.Name, k, v, host)
				continue
			}
			if host == b.Name {
				continue
			}
			if !c.dependsOn(b.Name, host) && len(target.Profiles) == 0 {
				t.Errorf("%s uses %s (%s) but does not depend on it", b.Name, host, k)
			}
		}
	}
}

// dependsOn reports whether service from waits for to, directly or through
// another dependency (a migrate one-shot that waits for its database).
func (c composeFileModel) dependsOn(from, to string) bool {
	seen := map[string]bool{}
	var visit func(string) bool
	visit = func(s string) bool {
		if seen[s] {
			return false
		}
		seen[s] = true
		for dep := range c.Services[s].DependsOn {
			if dep == to || visit(dep) {
				return true
			}
		}
		return false
	}
	return visit(from)
}

// addressHost returns the host of a URL or host:port value, or "".
func addressHost(v string) string {
	if strings.Contains(v, "://") {
		u, err := url.Parse(v)
		if err != nil {
			return ""
		}
		return u.Hostname()
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" || host == "0.0.0.0" || host == "::" {
		return ""
	}
	if _, err := strconv.Atoi(port); err != nil {
		return ""
	}
	return host
}

func TestComposeEnvIsDevOnly(t *testing.T) {
	env := parseEnvFile(t, "deploy/compose.env")
	if env["LURUS_ENV"] != "dev" {
		t.Errorf("deploy/compose.env: LURUS_ENV=%q, want dev", env["LURUS_ENV"])
	}
	var secrets []string
	for _, b := range binaries {
		secrets = append(secrets, moduleSource(t, b.Module).Secrets...)
	}
	if len(secrets) == 0 {
		t.Fatal("no service reads a secret with config.Secret")
	}
	for _, s := range secrets {
		if v, ok := env[s]; ok && !strings.Contains(v, "dev-only") {
			t.Errorf("deploy/compose.env: %s must be a dev-only value", s)
		}
	}
}

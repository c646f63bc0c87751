package deploy

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// k8sObject is the part of a Kubernetes object the checks read.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       yaml.Node         `yaml:"spec"`
}

type podSpec struct {
	InitContainers []container `yaml:"initContainers"`
	Containers     []container `yaml:"containers"`
	Volumes        []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		EmptyDir *struct{} `yaml:"emptyDir"`
	} `yaml:"volumes"`
	SecurityContext struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    *int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
			ConfigMapKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"configMapKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	StartupProbe   *probe `yaml:"startupProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
	SecurityContext struct {
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
}

type probe struct {
	HTTPGet *struct {
		Path string    `yaml:"path"`
		Port yaml.Node `yaml:"port"`
	} `yaml:"httpGet"`
}

// manifests is the output of one kustomize build.
type manifests []k8sObject

func (m manifests) find(kind, name string) (k8sObject, bool) {
	for _, o := range m {
		if o.Kind == kind && o.Metadata.Name == name {
			return o, true
		}
	}
	return k8sObject{}, false
}

func (m manifests) ofKind(kind string) []k8sObject {
	var out []k8sObject
	for _, o := range m {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// configMap finds a generated ConfigMap by its base name (kustomize adds a
// content hash suffix and rewrites the references to it).
func (m manifests) configMap(name string) (k8sObject, bool) {
	for _, o := range m.ofKind("ConfigMap") {
		if o.Metadata.Name == name || strings.HasPrefix(o.Metadata.Name, name+"-") && len(o.Metadata.Name) == len(name)+11 {
			return o, true
		}
	}
	return k8sObject{}, false
}

func (o k8sObject) podSpec(t testing.TB) podSpec {
	t.Helper()
	var spec struct {
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	}
	if err := o.Spec.Decode(&spec); err != nil {
		t.Fatalf("%s/%s: %v", o.Kind, o.Metadata.Name, err)
	}
	return spec.Template.Spec
}

// podAnnotations are the annotations of a workload's pod template.
func (o k8sObject) podAnnotations(t testing.TB) map[string]string {
	t.Helper()
	var spec struct {
		Template struct {
			Metadata struct {
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
		} `yaml:"template"`
	}
	if err := o.Spec.Decode(&spec); err != nil {
		t.Fatalf("%s/%s: %v", o.Kind, o.Metadata.Name, err)
	}
	return spec.Template.Metadata.Annotations
}

var (
	kustomizeMu    sync.Mutex
	kustomizeCache = map[string]manifests{}
	kustomizeRaw   = map[string][]string{}
)

// kustomizeDocs returns the YAML documents of a build, one per object.
func kustomizeDocs(t testing.TB, dir string) []string {
	t.Helper()
	kustomize(t, dir)
	kustomizeMu.Lock()
	defer kustomizeMu.Unlock()
	return kustomizeRaw[dir]
}

// kustomize runs `kubectl kustomize dir` once per test binary.
func kustomize(t testing.TB, dir string) manifests {
	t.Helper()
	kustomizeMu.Lock()
	defer kustomizeMu.Unlock()
	if m, ok := kustomizeCache[dir]; ok {
		return m
	}
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		if os.Getenv("LURUS_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("kubectl not found (LURUS_REQUIRE_INTEGRATION=1): %v", err)
		}
		t.Skipf("kubectl not found, skipping the kustomize build: %v", err)
	}
	// kubectl reads the files, not this process: read them here too, so the
	// go test cache knows the result depends on them.
	kroot := filepath.Join(root(t), "deploy", "k3s")
	if err := filepath.WalkDir(kroot, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			_, err = os.ReadFile(p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(kubectl, "kustomize", filepath.Join(root(t), dir))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	kustomizeRaw[dir] = strings.Split(stdout.String(), "\n---\n")
	var out manifests
	dec := yaml.NewDecoder(&stdout)
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("kustomize output of %s: %v", dir, err)
		}
		out = append(out, o)
	}
	kustomizeCache[dir] = out
	return out
}

const k3sDir = "deploy/k3s"

// podEnv is the environment a container gets: envFrom ConfigMaps (resolved
// in the build), envFrom/env Secrets (keys only, resolved against the
// template), and literal values.
func podEnv(t *testing.T, m manifests, c container) map[string]string {
	t.Helper()
	secretKeys := secretTemplateKeys(t)
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm, ok := m.configMap(strings.TrimSuffix(ef.ConfigMapRef.Name, hashSuffix(ef.ConfigMapRef.Name)))
			if !ok {
				t.Errorf("%s: envFrom ConfigMap %s not in the build", c.Name, ef.ConfigMapRef.Name)
				continue
			}
			for k, v := range cm.Data {
				env[k] = v
			}
		case ef.SecretRef != nil:
			if ef.SecretRef.Name != "lurus-secrets" {
				t.Errorf("%s: envFrom unknown Secret %s", c.Name, ef.SecretRef.Name)
			}
			for k := range secretKeys {
				env[k] = "<secret>"
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name != "lurus-secrets" {
				t.Errorf("%s: %s from unknown Secret %s", c.Name, e.Name, ref.Name)
			} else if _, ok := secretKeys[ref.Key]; !ok {
				t.Errorf("%s: %s reads key %s, missing from %s", c.Name, e.Name, ref.Key, secretTemplate)
			}
			env[e.Name] = "<secret>"
		case e.ValueFrom.ConfigMapKeyRef != nil:
			env[e.Name] = "<configmap>"
		}
	}
	return env
}

// hashSuffix returns the "-xxxxxxxxxx" kustomize appends, or "".
func hashSuffix(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 || len(name)-i != 11 {
		return ""
	}
	return name[i:]
}

const secretTemplate = "deploy/k3s/secrets/lurus-secrets.yaml.example"

// secretTemplateKeys are the keys of the lurus-secrets template.
func secretTemplateKeys(t testing.TB) map[string]string {
	t.Helper()
	var s k8sObject
	if err := yaml.Unmarshal(readFile(t, secretTemplate), &s); err != nil {
		t.Fatalf("%s: %v", secretTemplate, err)
	}
	if s.Kind != "Secret" || s.Metadata.Name != "lurus-secrets" || len(s.StringData) == 0 {
		t.Fatalf("%s: want Secret lurus-secrets with stringData, got %s %s", secretTemplate, s.Kind, s.Metadata.Name)
	}
	return s.StringData
}

func TestK3SSecretTemplateHoldsNoSecret(t *testing.T) {
	for k, v := range secretTemplateKeys(t) {
		if v != "" {
			t.Errorf("%s: %s has a value; the template must stay empty", secretTemplate, k)
		}
	}
	for _, o := range kustomize(t, k3sDir).ofKind("Secret") {
		t.Errorf("deploy/k3s generates Secret %s: secrets are created out of band", o.Metadata.Name)
	}
}

func portNumber(t *testing.T, c container, n yaml.Node) int {
	t.Helper()
	if p, err := strconv.Atoi(n.Value); err == nil {
		return p
	}
	for _, p := range c.Ports {
		if p.Name == n.Value {
			return p.ContainerPort
		}
	}
	t.Errorf("%s: probe port %q is not a container port", c.Name, n.Value)
	return 0
}

func checkProbe(t *testing.T, c container, what string, p *probe, path string, port int) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s: no HTTP %s probe", c.Name, what)
		return
	}
	if p.HTTPGet.Path != path {
		t.Errorf("%s: %s probe path %s, want %s", c.Name, what, p.HTTPGet.Path, path)
	}
	if got := portNumber(t, c, p.HTTPGet.Port); got != port {
		t.Errorf("%s: %s probe on port %d, want %d", c.Name, what, got, port)
	}
}

// TestK3SDeployments checks every service's Deployment against the
// service: image, port, probes, environment, config, migrations.
func TestK3SDeployments(t *testing.T) {
	m := kustomize(t, k3sDir)
	for _, b := range services() {
		t.Run(b.Name, func(t *testing.T) {
			d, ok := m.find("Deployment", b.Name)
			if !ok {
				t.Fatalf("no Deployment %s", b.Name)
			}
			if d.Metadata.Namespace != "lurus-system" {
				t.Errorf("namespace %q, want lurus-system", d.Metadata.Namespace)
			}
			ps := d.podSpec(t)
			if ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot {
				t.Errorf("pod does not set runAsNonRoot")
			}
			var c container
			for _, cc := range ps.Containers {
				if cc.Name == b.Name {
					c = cc
				}
			}
			if c.Name == "" {
				t.Fatalf("no container named %s", b.Name)
			}
			wantImage := "ghcr.io/lurus-switch/" + b.Name + ":"
			if !strings.HasPrefix(c.Image, wantImage) {
				t.Errorf("image %q, want %s<tag>", c.Image, wantImage)
			}
			if len(c.Ports) != 1 || c.Ports[0].ContainerPort != b.Port {
				t.Errorf("container ports %+v, want one on %d", c.Ports, b.Port)
			}
			checkProbe(t, c, "liveness", c.LivenessProbe, "/health", b.Port)
			checkProbe(t, c, "readiness", c.ReadinessProbe, "/ready", b.Port)
			if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
				t.Errorf("resources %+v: want cpu/memory requests and a memory limit", c.Resources)
			}
			if c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
				t.Errorf("root filesystem is writable")
			}
			a := d.podAnnotations(t)
			if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != strconv.Itoa(b.Port) || a["prometheus.io/path"] != "/metrics" {
				t.Errorf("scrape annotations %v, want scrape=true port=%d path=/metrics", a, b.Port)
			}

			cfg := loadServiceConfig(t, b)
			for _, cc := range append(slices.Clone(ps.InitContainers), c) {
				env := podEnv(t, m, cc)
				for _, name := range requiredEnv(t, b) {
					v, ok := env[name]
					if !ok {
						t.Errorf("%s: %s is not set", cc.Name, name)
					} else if isLoopback(v) {
						t.Errorf("%s: %s=%q points at the pod's own loopback", cc.Name, name, v)
					}
				}
				if env["LURUS_ENV"] == "dev" {
					t.Errorf("%s: LURUS_ENV=dev in the production build", cc.Name)
				}
				if cc.Name == b.Name {
					checkListen(t, cfg.Listen.Name, env[cfg.Listen.Name], b.Port)
				}
				// The config file comes from the service's ConfigMap, at
				// the image's default -config path.
				mounted := false
				for _, vm := range cc.VolumeMounts {
					if vm.MountPath != "/app/configs" {
						continue
					}
					for _, v := range ps.Volumes {
						if v.Name == vm.Name && v.ConfigMap != nil && strings.HasPrefix(v.ConfigMap.Name, b.Name+"-config") {
							mounted = true
						}
					}
				}
				if !mounted {
					t.Errorf("%s: ConfigMap %s-config is not mounted on /app/configs", cc.Name, b.Name)
				}
			}
			var migrate bool
			for _, ic := range ps.InitContainers {
				if slices.Equal(ic.Args, []string{"migrate"}) {
					migrate = true
					if ic.Image != c.Image {
						t.Errorf("migrate init container runs %s, the service %s", ic.Image, c.Image)
					}
				}
			}
			if migrate != b.Migrate {
				t.Errorf("migrate init container: %v, want %v", migrate, b.Migrate)
			}

			svc, ok := m.find("Service", b.Name)
			if !ok {
				t.Fatalf("no Service %s", b.Name)
			}
			var ss struct {
				Selector map[string]string `yaml:"selector"`
				Ports    []struct {
					Port       int       `yaml:"port"`
					TargetPort yaml.Node `yaml:"targetPort"`
				} `yaml:"ports"`
			}
			if err := svc.Spec.Decode(&ss); err != nil {
				t.Fatal(err)
			}
			if len(ss.Ports) != 1 || ss.Ports[0].Port != b.Port || portNumber(t, c, ss.Ports[0].TargetPort) != b.Port {
				t.Errorf("Service ports %+v, want %d -> %d", ss.Ports, b.Port, b.Port)
			}
			if ss.Selector["app.kubernetes.io/name"] != b.Name {
				t.Errorf("Service selector %v", ss.Selector)
			}
		})
	}
}

// TestK3SConfigMapsMatchServiceConfigs: the config a pod reads has the
// same keys as the service's own configs/config.yaml (unknown keys fail at
// start; missing ones silently take defaults).
func TestK3SConfigMapsMatchServiceConfigs(t *testing.T) {
	m := kustomize(t, k3sDir)
	for _, b := range services() {
		cm, ok := m.configMap(b.Name + "-config")
		if !ok {
			t.Errorf("no ConfigMap %s-config", b.Name)
			continue
		}
		doc, ok := cm.Data["config.yaml"]
		if !ok {
			t.Errorf("ConfigMap %s has no config.yaml", cm.Metadata.Name)
			continue
		}
		d, _ := m.find("Deployment", b.Name)
		var env map[string]string
		for _, c := range d.podSpec(t).Containers {
			if c.Name == b.Name {
				env = podEnv(t, m, c)
			}
		}
		// Both expanded with the pod's environment: what the pod reads
		// must parse, with the keys of the service's own config.
		got := yamlKeys(t, cm.Metadata.Name+" in the pod's environment", []byte(doc), env)
		want := yamlKeys(t, b.Module+"/configs/config.yaml in the pod's environment", readFile(t, filepath.Join(b.Module, "configs", "config.yaml")), env)
		missing := slices.DeleteFunc(slices.Clone(want), func(k string) bool { return slices.Contains(got, k) })
		extra := slices.DeleteFunc(slices.Clone(got), func(k string) bool { return slices.Contains(want, k) })
		if len(missing)+len(extra) > 0 {
			t.Errorf("%s differs from %s/configs/config.yaml: missing keys %v, unknown keys %v (go test -run TestCopies -update copies the service's config)",
				cm.Metadata.Name, b.Module, missing, extra)
		}
	}
}

func TestK3SIngressNeverReachesInternal(t *testing.T) {
	m := kustomize(t, k3sDir)
	ings := m.ofKind("Ingress")
	if len(ings) == 0 {
		t.Fatal("no Ingress")
	}
	// Public prefixes of DESIGN.md §9 and the service that serves each.
	allowed := map[string]string{
		"/v1": "gateway-service", "/v1beta": "gateway-service",
		"/api/v1/billing": "billing-service",
		"/api/v1/sync":    "sync-service", "/ws/sync": "sync-service",
	}
	seen := map[string]bool{}
	for _, ing := range ings {
		var spec struct {
			DefaultBackend any `yaml:"defaultBackend"`
			Rules          []struct {
				Host string `yaml:"host"`
				HTTP struct {
					Paths []struct {
						Path     string `yaml:"path"`
						PathType string `yaml:"pathType"`
						Backend  struct {
							Service struct {
								Name string `yaml:"name"`
							} `yaml:"service"`
						} `yaml:"backend"`
					} `yaml:"paths"`
				} `yaml:"http"`
			} `yaml:"rules"`
		}
		if err := ing.Spec.Decode(&spec); err != nil {
			t.Fatal(err)
		}
		if spec.DefaultBackend != nil {
			t.Errorf("Ingress %s has a defaultBackend: every path would reach it", ing.Metadata.Name)
		}
		if ing.Metadata.Annotations["cert-manager.io/cluster-issuer"] == "" {
			t.Errorf("Ingress %s has no cert-manager issuer", ing.Metadata.Name)
		}
		for _, r := range spec.Rules {
			if r.Host != "ai.lurus.cn" {
				t.Errorf("rule for host %q", r.Host)
			}
			for _, p := range r.HTTP.Paths {
				seen[p.Path] = true
				switch {
				case p.PathType != "Prefix" && p.PathType != "Exact":
					t.Errorf("path %s: pathType %q (only Prefix and Exact have defined matching)", p.Path, p.PathType)
				case internalReachable(p.Path):
					t.Errorf("path %s -> %s can reach /internal", p.Path, p.Backend.Service.Name)
				case allowed[p.Path] != p.Backend.Service.Name:
					t.Errorf("path %s -> %s is not a public route of that service", p.Path, p.Backend.Service.Name)
				}
			}
		}
	}
	for p := range allowed {
		if !seen[p] {
			t.Errorf("public prefix %s is not routed", p)
		}
	}
}

// internalReachable reports whether a path prefix matches any /internal
// path, also under string-prefix matching (Traefik's PathPrefix).
func internalReachable(prefix string) bool {
	p := strings.ToLower(prefix)
	return p == "" || strings.HasPrefix("/internal", strings.TrimSuffix(p, "/")) || strings.HasPrefix(p, "/internal") || strings.Contains(p, "/internal/")
}

func TestInternalReachable(t *testing.T) {
	for p, want := range map[string]bool{
		"/": true, "": true, "/i": true, "/internal": true, "/Internal/v1": true, "/v1/internal/x": true,
		"/v1": false, "/api/v1/billing": false, "/ws/sync": false,
	} {
		if got := internalReachable(p); got != want {
			t.Errorf("internalReachable(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestK3SGatewayScaling(t *testing.T) {
	m := kustomize(t, k3sDir)
	hpas := m.ofKind("HorizontalPodAutoscaler")
	if len(hpas) != 1 {
		t.Fatalf("want one HPA (the gateway), found %d", len(hpas))
	}
	var spec struct {
		ScaleTargetRef struct {
			Kind, Name string
		} `yaml:"scaleTargetRef"`
		MinReplicas int `yaml:"minReplicas"`
		MaxReplicas int `yaml:"maxReplicas"`
	}
	if err := hpas[0].Spec.Decode(&spec); err != nil {
		t.Fatal(err)
	}
	if spec.ScaleTargetRef.Kind != "Deployment" || spec.ScaleTargetRef.Name != "gateway-service" {
		t.Errorf("HPA targets %s/%s, want Deployment/gateway-service", spec.ScaleTargetRef.Kind, spec.ScaleTargetRef.Name)
	}
	if spec.MinReplicas < 2 || spec.MaxReplicas <= spec.MinReplicas {
		t.Errorf("HPA replicas %d..%d", spec.MinReplicas, spec.MaxReplicas)
	}
	gw, _ := m.find("Deployment", "gateway-service")
	var d struct {
		Replicas *int `yaml:"replicas"`
	}
	if err := gw.Spec.Decode(&d); err != nil || d.Replicas != nil {
		t.Errorf("the gateway Deployment sets replicas: every apply would undo the HPA (%v)", err)
	}
	for _, b := range services() {
		found := false
		for _, pdb := range m.ofKind("PodDisruptionBudget") {
			var s struct {
				Selector struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				} `yaml:"selector"`
			}
			if err := pdb.Spec.Decode(&s); err != nil {
				t.Fatal(err)
			}
			found = found || s.Selector.MatchLabels["app.kubernetes.io/name"] == b.Name
		}
		if !found {
			t.Errorf("no PodDisruptionBudget selects %s", b.Name)
		}
	}
}

func TestK3SStatefulInfrastructure(t *testing.T) {
	m := kustomize(t, k3sDir)
	for name, persistent := range map[string]bool{"postgres": true, "redis": false, "nats": true, "clickhouse": true} {
		s, ok := m.find("StatefulSet", name)
		if !ok {
			t.Errorf("no StatefulSet %s", name)
			continue
		}
		var spec struct {
			VolumeClaimTemplates []struct {
				Spec struct {
					StorageClassName string `yaml:"storageClassName"`
				} `yaml:"spec"`
			} `yaml:"volumeClaimTemplates"`
		}
		if err := s.Spec.Decode(&spec); err != nil {
			t.Fatal(err)
		}
		if persistent && (len(spec.VolumeClaimTemplates) != 1 || spec.VolumeClaimTemplates[0].Spec.StorageClassName != "local-path") {
			t.Errorf("StatefulSet %s: want one local-path volume claim", name)
		}
		if _, ok := m.find("Service", name); !ok {
			t.Errorf("no Service %s", name)
		}
	}
	nats, _ := m.find("StatefulSet", "nats")
	if c := nats.podSpec(t).Containers; len(c) == 0 || !slices.Contains(c[0].Args, "-js") {
		t.Errorf("nats runs without JetStream")
	}
	init, ok := m.configMap("postgres-init")
	if !ok || init.Data["10-init-db.sql"] != string(readFile(t, "init-db.sql")) {
		t.Errorf("postgres-init does not carry the repository's init-db.sql")
	}
}

// TestK3SDevOverlay: the dev overlay adds the mock upstream, dev secrets and
// LURUS_ENV=dev; the production build has none of them.
func TestK3SDevOverlay(t *testing.T) {
	prod := kustomize(t, k3sDir)
	dev := kustomize(t, "deploy/k3s/overlays/dev")
	if _, ok := prod.find("Deployment", "mock-upstream"); ok {
		t.Error("mock-upstream is in the production build")
	}
	d, ok := dev.find("Deployment", "mock-upstream")
	if !ok {
		t.Fatal("no mock-upstream in the dev overlay")
	}
	c := d.podSpec(t).Containers[0]
	env := podEnv(t, dev, c)
	checkListen(t, "MOCK_UPSTREAM_ADDR", env["MOCK_UPSTREAM_ADDR"], binaryByName(t, "mock-upstream").Port)
	if !strings.HasPrefix(c.Image, "ghcr.io/lurus-switch/mock-upstream:") {
		t.Errorf("mock-upstream image %q", c.Image)
	}
	sec, ok := dev.find("Secret", "lurus-secrets")
	if !ok {
		t.Fatal("the dev overlay has no lurus-secrets")
	}
	for k := range secretTemplateKeys(t) {
		if _, ok := sec.Data[k]; !ok {
			t.Errorf("dev lurus-secrets lacks %s", k)
		}
	}
	if env, ok := dev.configMap("lurus-env"); !ok || env.Data["LURUS_ENV"] != "dev" {
		t.Errorf("dev overlay does not set LURUS_ENV=dev")
	}
}

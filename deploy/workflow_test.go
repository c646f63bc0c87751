package deploy

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const workflowFile = ".github/workflows/deploy.yml"

type workflow struct {
	Name        string            `yaml:"name"`
	On          yaml.Node         `yaml:"on"`
	Permissions map[string]string `yaml:"permissions"`
	Jobs        map[string]struct {
		Needs       stringList        `yaml:"needs"`
		Permissions map[string]string `yaml:"permissions"`
		Strategy    struct {
			Matrix struct {
				Include []map[string]string `yaml:"include"`
			} `yaml:"matrix"`
		} `yaml:"strategy"`
		Steps []struct {
			Name string            `yaml:"name"`
			Uses string            `yaml:"uses"`
			Run  string            `yaml:"run"`
			With map[string]string `yaml:"with"`
			Env  map[string]string `yaml:"env"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

// TestDeployWorkflow: images for every binary, built like Compose builds
// them, pushed with packages: write only where needed; then kubectl apply
// -k deploy/k3s with the KUBECONFIG secret, after the images.
func TestDeployWorkflow(t *testing.T) {
	var w workflow
	if err := yaml.Unmarshal(readFile(t, workflowFile), &w); err != nil {
		t.Fatalf("%s: %v", workflowFile, err)
	}
	var on struct {
		Push struct {
			Branches []string `yaml:"branches"`
			Tags     []string `yaml:"tags"`
		} `yaml:"push"`
	}
	if err := w.On.Decode(&on); err != nil || !slices.Contains(on.Push.Branches, "main") || len(on.Push.Tags) == 0 {
		t.Errorf("workflow must run on pushes to main and on tags: %+v %v", on, err)
	}
	if w.Permissions["packages"] == "write" {
		t.Error("packages: write at workflow level; grant it to the image job only")
	}
	images, ok := w.Jobs["images"]
	if !ok {
		t.Fatal("no images job")
	}
	if images.Permissions["packages"] != "write" {
		t.Error("images job cannot push packages")
	}
	compose := loadCompose(t)
	df := loadDockerfile(t)
	matrix := map[string]map[string]string{}
	for _, m := range images.Strategy.Matrix.Include {
		matrix[m["service"]] = m
	}
	for _, b := range binaries {
		m, ok := matrix[b.Name]
		if !ok {
			t.Errorf("no image for %s", b.Name)
			continue
		}
		cb := compose.Services[b.Name].Build
		want := map[string]string{"module": cb.buildArg("MODULE"), "port": cb.buildArg("PORT"), "target": cb.Target}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s: matrix %s=%q, Compose builds with %q", b.Name, k, m[k], v)
			}
		}
		if _, ok := df.stage(m["target"]); !ok {
			t.Errorf("%s: target %q is no Dockerfile stage", b.Name, m["target"])
		}
	}
	var build bool
	for _, s := range images.Steps {
		if strings.HasPrefix(s.Uses, "docker/build-push-action@") {
			build = true
			if s.With["file"] != dockerfilePath || s.With["context"] != "." || s.With["push"] != "true" {
				t.Errorf("build-push-action: %v", s.With)
			}
			for _, arg := range []string{"SERVICE=${{ matrix.service }}", "MODULE=${{ matrix.module }}", "PORT=${{ matrix.port }}"} {
				if !strings.Contains(s.With["build-args"], arg) {
					t.Errorf("build-args lack %s", arg)
				}
			}
			if s.With["target"] != "${{ matrix.target }}" {
				t.Errorf("build target %q", s.With["target"])
			}
		}
	}
	if !build {
		t.Error("no docker/build-push-action step")
	}

	deploy, ok := w.Jobs["deploy"]
	if !ok {
		t.Fatal("no deploy job")
	}
	if !slices.Contains(deploy.Needs, "images") {
		t.Error("deploy does not wait for the images")
	}
	var kubeconfig, apply bool
	var pinned []string
	for _, s := range deploy.Steps {
		for _, v := range s.Env {
			kubeconfig = kubeconfig || v == "${{ secrets.KUBECONFIG }}"
		}
		apply = apply || strings.Contains(s.Run, "kubectl apply -k deploy/k3s")
		if strings.Contains(s.Run, "kustomize\" edit set image") || strings.Contains(s.Run, "kustomize edit set image") {
			for _, b := range services() {
				if strings.Contains(s.Run, b.Name) {
					pinned = append(pinned, b.Name)
				}
			}
		}
	}
	if !kubeconfig || !apply {
		t.Errorf("deploy job: KUBECONFIG secret used %v, kubectl apply -k deploy/k3s %v", kubeconfig, apply)
	}
	for _, b := range services() {
		if !slices.Contains(pinned, b.Name) {
			t.Errorf("deploy job does not pin the image of %s", b.Name)
		}
	}
	// The images it pins are the ones the kustomization names.
	k := string(readFile(t, "deploy/k3s/kustomization.yaml"))
	for _, b := range services() {
		if !strings.Contains(k, fmt.Sprintf("name: ghcr.io/lurus-switch/%s,", b.Name)) {
			t.Errorf("deploy/k3s/kustomization.yaml has no images entry for %s", b.Name)
		}
	}
}

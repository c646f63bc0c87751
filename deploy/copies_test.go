package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// copies are files kustomize needs inside deploy/k3s (it reads nothing
// outside a kustomization's directory), kept byte-identical to their
// source. `go test -run TestCopies -update` refreshes them, and also
// rewrites the service configs of deploy/k3s/base/configs from the
// services' own: those are compared by keys only
// (TestK3SConfigMapsMatchServiceConfigs), since an operator may tune their
// values.
func copies() map[string]string {
	out := map[string]string{
		"deploy/k3s/base/postgres-init/init-db.sql":          "init-db.sql",
		"deploy/k3s/base/monitoring/alerts.yml":              alertsFile,
		"deploy/k3s/base/monitoring/grafana-datasource.yaml": "deploy/grafana/provisioning/datasources/prometheus.yaml",
		"deploy/k3s/base/monitoring/grafana-dashboards.yaml": "deploy/grafana/provisioning/dashboards/dashboards.yaml",
		"deploy/k3s/base/monitoring/lurus-services.json":     dashboardFile,
	}
	return out
}

func TestCopies(t *testing.T) {
	all := copies()
	if *update {
		for _, b := range services() {
			all["deploy/k3s/base/configs/"+b.Name+".yaml"] = filepath.Join(b.Module, "configs", "config.yaml")
		}
	}
	for dst, src := range all {
		want := readFile(t, src)
		if *update {
			if err := os.WriteFile(filepath.Join(root(t), dst), want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(filepath.Join(root(t), dst))
		if err != nil {
			t.Errorf("%s: %v (run go test -run TestCopies -update)", dst, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s (run go test -run TestCopies -update)", dst, src)
		}
	}
}

package deploy

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"
)

// externalMetric reports whether a metric comes from outside the services:
// Prometheus itself, the Go and process collectors every service
// registers, node-exporter and cAdvisor.
func externalMetric(name string) bool {
	if name == "up" {
		return true
	}
	for _, p := range []string{"go_", "process_", "promhttp_", "scrape_", "prometheus_", "node_", "container_", "machine_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// labelsAddedByPrometheus are target and query labels no service exports.
var labelsAddedByPrometheus = []string{"job", "instance", "namespace", "pod", "le", "quantile", "deployment", "__name__"}

// owner returns the binary whose metrics carry name's prefix.
func owner(name string) (binary, bool) {
	for _, b := range binaries {
		if b.Prefix != "" && strings.HasPrefix(name, b.Prefix) {
			return b, true
		}
	}
	return binary{}, false
}

// histogramBase strips the series suffixes of a histogram or summary.
func histogramBase(name string) []string {
	out := []string{name}
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		if strings.HasSuffix(name, s) {
			out = append(out, strings.TrimSuffix(name, s))
		}
	}
	return out
}

// selector is one metric use in an expression.
type selector struct {
	Metric string
	Labels []string // label names matched, grouped by or joined on
}

var promql = parser.NewParser(parser.Options{})

// selectors parses a PromQL expression and lists the metrics it reads,
// each with the label names it depends on: its own matchers and the
// grouping (by, without, on, ignoring) of the expressions around it.
func selectors(expr string) ([]selector, error) {
	e, err := promql.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var out []selector
	parser.Inspect(e, func(n parser.Node, path []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		s := selector{Metric: vs.Name}
		for _, m := range vs.LabelMatchers {
			if m.Name != model.MetricNameLabel {
				s.Labels = append(s.Labels, m.Name)
			}
		}
		for _, a := range path {
			switch a := a.(type) {
			case *parser.AggregateExpr:
				s.Labels = append(s.Labels, a.Grouping...)
			case *parser.BinaryExpr:
				if a.VectorMatching != nil {
					s.Labels = append(s.Labels, a.VectorMatching.MatchingLabels...)
				}
			}
		}
		out = append(out, s)
		return nil
	})
	return out, nil
}

// checkExpr fails when expr does not parse, names a metric no service
// defines, or depends on a label the owning service never uses.
func checkExpr(t *testing.T, where, expr string) {
	t.Helper()
	sels, err := selectors(expr)
	if err != nil {
		t.Errorf("%s: %v\n%s", where, err, expr)
		return
	}
	for _, s := range sels {
		if externalMetric(s.Metric) {
			continue
		}
		b, ok := owner(s.Metric)
		if !ok {
			t.Errorf("%s: metric %s belongs to no service (prefixes: lurus_gateway_, lurus_provider_, lurus_log_, billing_, lurus_sync_)", where, s.Metric)
			continue
		}
		src := moduleSource(t, b.Module)
		var defined string
		for _, n := range histogramBase(s.Metric) {
			if src.Strings[n] {
				defined = n
			}
		}
		if defined == "" {
			t.Errorf("%s: metric %s is not defined in %s's Go code", where, s.Metric, b.Module)
			continue
		}
		labels, known := src.Labels[defined]
		for _, l := range s.Labels {
			switch {
			case slices.Contains(labelsAddedByPrometheus, l):
			case known && !slices.Contains(labels, l):
				t.Errorf("%s: %s has labels %v, not %q", where, defined, labels, l)
			case !known && !src.Strings[l]:
				t.Errorf("%s: label %q of %s is not a string in %s's Go code", where, l, s.Metric, b.Module)
			}
		}
	}
}

func TestSelectors(t *testing.T) {
	s, err := selectors(`sum by (code) (rate(a_total{route="x"}[5m])) / on (pod) b`)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 2 || s[0].Metric != "a_total" || s[1].Metric != "b" ||
		!slices.Equal(s[0].Labels, []string{"route", "pod", "code"}) || !slices.Equal(s[1].Labels, []string{"pod"}) {
		t.Errorf("selectors = %+v", s)
	}
	if _, err := selectors("rate(x[5m]"); err == nil {
		t.Error("a broken expression parsed")
	}
}

const alertsFile = "deploy/prometheus/alerts.yml"

func TestAlertRules(t *testing.T) {
	groups, errs := rulefmt.Parse(readFile(t, alertsFile), false, model.UTF8Validation, promql, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, err := range errs {
		t.Errorf("%s: %v", alertsFile, err)
	}
	if groups == nil {
		t.FailNow()
	}
	var names []string
	doc := string(readFile(t, "docs/operations.md"))
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: recording rule %s; only alerts live here", g.Name, r.Record)
				continue
			}
			names = append(names, r.Alert)
			checkExpr(t, "alert "+r.Alert, r.Expr)
			if r.Labels["severity"] == "" {
				t.Errorf("alert %s has no severity", r.Alert)
			}
			anchor := "#" + strings.ToLower(r.Alert)
			if r.Annotations["runbook"] != "docs/operations.md"+anchor {
				t.Errorf("alert %s: runbook %q, want docs/operations.md%s", r.Alert, r.Annotations["runbook"], anchor)
			}
			if !strings.Contains(doc, "### "+r.Alert) {
				t.Errorf("alert %s has no \"### %s\" section in docs/operations.md", r.Alert, r.Alert)
			}
		}
	}
	// The alerts the operations brief asks for.
	for _, want := range []string{"GatewayHigh5xxRatio", "GatewayLatencyP99High", "GatewayBreakerOpen", "BillingConsumerLagGrowing",
		"BillingSettlementFailures", "LogInsertErrors", "GatewayOutboxBacklog", "GatewayEventsLost", "SyncSlowClientDrops"} {
		if !slices.Contains(names, want) {
			t.Errorf("no alert %s", want)
		}
	}
}

// grafanaDashboard is the part of a dashboard JSON the checks read.
type grafanaPanel struct {
	Title   string         `json:"title"`
	Type    string         `json:"type"`
	Panels  []grafanaPanel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
}

const dashboardFile = "deploy/grafana/provisioning/dashboards/lurus-services.json"

// grafanaVars are the Grafana macros a dashboard expression may use.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

func TestGrafanaDashboard(t *testing.T) {
	var d struct {
		UID    string         `json:"uid"`
		Title  string         `json:"title"`
		Panels []grafanaPanel `json:"panels"`
	}
	if err := json.Unmarshal(readFile(t, dashboardFile), &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var ds struct {
		Datasources []struct {
			UID string `yaml:"uid"`
			URL string `yaml:"url"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(readFile(t, "deploy/grafana/provisioning/datasources/prometheus.yaml"), &ds); err != nil || len(ds.Datasources) != 1 {
		t.Fatalf("datasource provisioning: %v %+v", err, ds)
	}
	var all []grafanaPanel
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			all = append(all, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	used := map[string]bool{}
	for _, p := range all {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		if p.Datasource == nil || p.Datasource.UID != ds.Datasources[0].UID {
			t.Errorf("panel %q does not use the provisioned datasource %q", p.Title, ds.Datasources[0].UID)
		}
		for _, tg := range p.Targets {
			expr := grafanaVars.Replace(tg.Expr)
			if strings.Contains(expr, "$") {
				t.Errorf("panel %q uses an undefined variable: %s", p.Title, tg.Expr)
				continue
			}
			checkExpr(t, fmt.Sprintf("panel %q", p.Title), expr)
			if sels, err := selectors(expr); err == nil {
				for _, s := range sels {
					used[s.Metric] = true
				}
			}
		}
	}
	// What the operations brief asks the dashboard to show.
	for _, want := range []string{"up", "lurus_gateway_tokens_total", "lurus_gateway_ttfb_seconds_bucket", "lurus_gateway_breaker_state",
		"billing_usage_records_total", "billing_cost_usd_total", "billing_low_balance_alerts_total", "billing_consumer_lag",
		"lurus_log_rows_ingested_total", "lurus_sync_connections", "lurus_sync_users_online", "lurus_sync_fanout_latency_seconds_bucket"} {
		if !used[want] {
			t.Errorf("dashboard does not show %s", want)
		}
	}
	var provider struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(readFile(t, "deploy/grafana/provisioning/dashboards/dashboards.yaml"), &provider); err != nil || len(provider.Providers) != 1 {
		t.Fatalf("dashboard provider: %v", err)
	}
	// Compose mounts deploy/grafana/provisioning on /etc/grafana/provisioning.
	if got := provider.Providers[0].Options.Path; got != "/etc/grafana/provisioning/dashboards" {
		t.Errorf("dashboard provider path %s", got)
	}
}

// prometheusConfig is the subset of the Prometheus configuration used
// here, decoded strictly so a misspelt key fails.
type prometheusConfig struct {
	Global struct {
		ScrapeInterval     string            `yaml:"scrape_interval"`
		EvaluationInterval string            `yaml:"evaluation_interval"`
		ExternalLabels     map[string]string `yaml:"external_labels"`
	} `yaml:"global"`
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		Scheme        string `yaml:"scheme"`
		MetricsPath   string `yaml:"metrics_path"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
		KubernetesSDConfigs []struct {
			Role       string `yaml:"role"`
			Namespaces struct {
				Names []string `yaml:"names"`
			} `yaml:"namespaces"`
		} `yaml:"kubernetes_sd_configs"`
		TLSConfig struct {
			CAFile string `yaml:"ca_file"`
		} `yaml:"tls_config"`
		Authorization struct {
			CredentialsFile string `yaml:"credentials_file"`
		} `yaml:"authorization"`
		RelabelConfigs []struct {
			SourceLabels []string `yaml:"source_labels"`
			Action       string   `yaml:"action"`
			Regex        string   `yaml:"regex"`
			Replacement  string   `yaml:"replacement"`
			TargetLabel  string   `yaml:"target_label"`
		} `yaml:"relabel_configs"`
	} `yaml:"scrape_configs"`
}

func loadPrometheusConfig(t *testing.T, rel string) prometheusConfig {
	t.Helper()
	var c prometheusConfig
	dec := yaml.NewDecoder(strings.NewReader(string(readFile(t, rel))))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	for _, d := range []string{c.Global.ScrapeInterval, c.Global.EvaluationInterval} {
		if _, err := model.ParseDuration(d); err != nil {
			t.Errorf("%s: interval %q: %v", rel, d, err)
		}
	}
	for _, sc := range c.ScrapeConfigs {
		for _, rc := range sc.RelabelConfigs {
			if _, err := regexp.Compile("^(?s:" + rc.Regex + ")$"); err != nil {
				t.Errorf("%s: job %s: relabel regex %q: %v", rel, sc.JobName, rc.Regex, err)
			}
			if !slices.Contains([]string{"", "replace", "keep", "drop", "labelmap", "labeldrop", "labelkeep", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal"}, rc.Action) {
				t.Errorf("%s: job %s: relabel action %q", rel, sc.JobName, rc.Action)
			}
		}
	}
	if len(c.RuleFiles) != 1 || filepath.Base(c.RuleFiles[0]) != "alerts.yml" {
		t.Errorf("%s: rule_files %v, want the alerts.yml", rel, c.RuleFiles)
	}
	return c
}

func TestPrometheusComposeScrapesEveryService(t *testing.T) {
	c := loadPrometheusConfig(t, "deploy/prometheus/prometheus.yml")
	compose := loadCompose(t)
	jobs := map[string][]string{}
	for _, sc := range c.ScrapeConfigs {
		if _, dup := jobs[sc.JobName]; dup {
			t.Errorf("job %s twice", sc.JobName)
		}
		for _, s := range sc.StaticConfigs {
			jobs[sc.JobName] = append(jobs[sc.JobName], s.Targets...)
		}
	}
	for _, b := range services() {
		want := fmt.Sprintf("%s:%d", b.Name, b.Port)
		if !slices.Equal(jobs[b.Name], []string{want}) {
			t.Errorf("job %s scrapes %v, want [%s]", b.Name, jobs[b.Name], want)
		}
	}
	for _, job := range []string{"node-exporter", "cadvisor"} {
		if len(jobs[job]) != 1 {
			t.Errorf("no %s job", job)
			continue
		}
		host := strings.Split(jobs[job][0], ":")[0]
		if _, ok := compose.Services[host]; !ok {
			t.Errorf("job %s scrapes %s, no Compose service", job, host)
		}
	}
	p := compose.Services["prometheus"]
	if !slices.Contains(p.Volumes, "./deploy/prometheus/alerts.yml:"+c.RuleFiles[0]+":ro") {
		t.Errorf("Compose prometheus does not mount alerts.yml at %s", c.RuleFiles[0])
	}
}

func TestPrometheusK3SDiscoversPods(t *testing.T) {
	c := loadPrometheusConfig(t, "deploy/k3s/base/monitoring/prometheus.yml")
	var pods, cadvisor bool
	for _, sc := range c.ScrapeConfigs {
		for _, sd := range sc.KubernetesSDConfigs {
			switch {
			case sd.Role == "pod" && slices.Equal(sd.Namespaces.Names, []string{"lurus-system"}):
				pods = true
				// The job label must be the app name, as in Compose.
				ok := slices.ContainsFunc(sc.RelabelConfigs, func(r struct {
					SourceLabels []string `yaml:"source_labels"`
					Action       string   `yaml:"action"`
					Regex        string   `yaml:"regex"`
					Replacement  string   `yaml:"replacement"`
					TargetLabel  string   `yaml:"target_label"`
				}) bool {
					return r.TargetLabel == "job" && slices.Equal(r.SourceLabels, []string{"__meta_kubernetes_pod_label_app_kubernetes_io_name"})
				})
				if !ok {
					t.Errorf("job %s does not set job from app.kubernetes.io/name", sc.JobName)
				}
			case sd.Role == "node" && sc.JobName == "cadvisor":
				cadvisor = true
			}
		}
	}
	if !pods || !cadvisor {
		t.Errorf("K3S Prometheus: pod discovery %v, cAdvisor %v", pods, cadvisor)
	}
	// node-exporter is found through the same annotations.
	m := kustomize(t, k3sDir)
	ne, ok := m.find("DaemonSet", "node-exporter")
	if !ok {
		t.Fatal("no node-exporter DaemonSet")
	}
	if ne.podAnnotations(t)["prometheus.io/scrape"] != "true" {
		t.Errorf("node-exporter is not annotated for scraping")
	}
}

// TestMetricNamesFromCode lists, for the report, which service metrics no
// alert or panel uses; it fails only if a service defines no metric with
// its prefix at all (a renamed prefix).
func TestMetricNamesFromCode(t *testing.T) {
	for _, b := range services() {
		var names []string
		for s := range moduleSource(t, b.Module).Strings {
			if strings.HasPrefix(s, b.Prefix) && !strings.ContainsAny(s, " {}:") {
				names = append(names, s)
			}
		}
		sort.Strings(names)
		if len(names) == 0 {
			t.Errorf("%s defines no metric named %s*", b.Name, b.Prefix)
		}
		t.Logf("%s: %v", b.Name, names)
	}
}

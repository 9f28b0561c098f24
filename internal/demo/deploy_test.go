package demo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/ledgerlog/ledgerlog/internal/agent"
	"github.com/ledgerlog/ledgerlog/internal/agent/stages"
	"github.com/ledgerlog/ledgerlog/internal/config"
	"github.com/ledgerlog/ledgerlog/internal/logql/syntax"
)

// deployDir is the repository's deploy/ directory.
const deployDir = "../../deploy"

func deployPath(parts ...string) string {
	return filepath.Join(append([]string{deployDir}, parts...)...)
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(into), path)
}

// RuleFile is a Prometheus/Loki rule file.
type RuleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []Rule `yaml:"rules"`
	} `yaml:"groups"`
}

// Rule is one alerting or recording rule.
type Rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func rulesByName(t *testing.T, path string) map[string]Rule {
	t.Helper()
	var f RuleFile
	readYAML(t, path, &f)
	out := map[string]Rule{}
	for _, g := range f.Groups {
		require.NotEmpty(t, g.Name)
		for _, r := range g.Rules {
			name := r.Alert + r.Record
			require.NotEmpty(t, name)
			require.NotContains(t, out, name)
			out[name] = r
		}
	}
	return out
}

// needHelper runs a binary if it is installed, else skips loudly.
func needHelper(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Logf("!!! %s not installed: SKIPPING its check of deploy/ (apt-get install -y prometheus prometheus-alertmanager)", name)
		t.Skipf("%s not installed", name)
	}
	return p
}

func TestDeployRules(t *testing.T) {
	seed := rulesByName(t, deployPath("seed", "financial_alerts.seed.yaml"))
	rules := rulesByName(t, deployPath("rules", "fake", "financial_alerts.yaml"))
	require.Len(t, rules, 3)
	for name, s := range seed {
		r, ok := rules[name]
		require.True(t, ok, name)
		// Only the documented differences.
		require.Equal(t, s.For, r.For, name)
		require.Equal(t, s.Labels, r.Labels, name)
		require.Equal(t, s.Annotations["summary"], r.Annotations["summary"], name)
		if name == "SuspiciousTransactionPattern" {
			require.Equal(t, strings.Replace(s.Annotations["description"], "per minute", "per second", 1), r.Annotations["description"])
		} else {
			require.Equal(t, s.Annotations, r.Annotations, name)
		}
		if name == "SuspiciousTransactionPattern" {
			require.Equal(t, s.Expr, r.Expr)
		} else {
			require.NotEqual(t, s.Expr, r.Expr, name)
		}
		_, err := syntax.ParseSampleExpr(r.Expr)
		require.NoError(t, err, name)
	}
	// Why the seed file is not loadable as it is.
	_, err := syntax.ParseSampleExpr(seed["ComplianceViolation"].Expr)
	require.ErrorContains(t, err, "empty-compatible")
	_, err = syntax.ParseSampleExpr(seed["HighErrorRate"].Expr)
	require.NoError(t, err)

	extra := rulesByName(t, deployPath("rules", "fake", "fintech_recording.yaml"))
	for name, r := range extra {
		_, err := syntax.ParseSampleExpr(r.Expr)
		require.NoError(t, err, name)
		if r.Alert != "" {
			require.Contains(t, []string{"critical", "warning"}, r.Labels["severity"], name)
			require.Contains(t, []string{"fintech", "security", "compliance"}, r.Labels["team"], name)
		}
	}
	require.Contains(t, extra, "KYCVerificationFailureWave")
}

func TestDeployLedgerlogConfig(t *testing.T) {
	path := deployPath("ledgerlog.yaml")
	l, err := config.Parse("server", []string{"-config.file", path}, os.Stderr)
	require.NoError(t, err)
	for _, w := range l.Warnings {
		t.Logf("warning: %s", w)
	}
	require.False(t, l.Config.AuthEnabled)
	require.Equal(t, 3100, l.Config.Server.HTTPListenPort)
	require.Equal(t, "127.0.0.1", l.Config.Server.HTTPListenAddress)

	// The ruler block uses Loki's keys and points at this directory layout.
	var raw struct {
		Ruler struct {
			Storage struct {
				Type  string `yaml:"type"`
				Local struct {
					Directory string `yaml:"directory"`
				} `yaml:"local"`
			} `yaml:"storage"`
			RulePath           string `yaml:"rule_path"`
			EvaluationInterval string `yaml:"evaluation_interval"`
			AlertmanagerURL    string `yaml:"alertmanager_url"`
			EnableAPI          bool   `yaml:"enable_api"`
			RemoteWrite        struct {
				Enabled bool `yaml:"enabled"`
				Client  struct {
					URL string `yaml:"url"`
				} `yaml:"client"`
			} `yaml:"remote_write"`
		} `yaml:"ruler"`
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &raw))
	r := raw.Ruler
	require.Equal(t, "local", r.Storage.Type)
	require.Equal(t, "deploy/rules", r.Storage.Local.Directory, "relative to the repository root")
	_, err = os.Stat(filepath.Join(deployDir, "..", r.Storage.Local.Directory, "fake", "financial_alerts.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, r.RulePath)
	_, err = time.ParseDuration(r.EvaluationInterval)
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:9093", r.AlertmanagerURL)
	require.True(t, r.EnableAPI)
	require.True(t, r.RemoteWrite.Enabled)
	require.Equal(t, "http://127.0.0.1:9090/api/v1/write", r.RemoteWrite.Client.URL)
}

func TestDeployPrometheus(t *testing.T) {
	var cfg struct {
		Global        map[string]any `yaml:"global"`
		Storage       map[string]any `yaml:"storage"`
		Alerting      map[string]any `yaml:"alerting"`
		ScrapeConfigs []struct {
			JobName        string `yaml:"job_name"`
			ScrapeInterval string `yaml:"scrape_interval"`
			StaticConfigs  []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	path := deployPath("prometheus.yml")
	readYAML(t, path, &cfg)
	targets := map[string]string{}
	for _, sc := range cfg.ScrapeConfigs {
		targets[sc.JobName] = sc.StaticConfigs[0].Targets[0]
	}
	require.Equal(t, map[string]string{"ledgerlog": "127.0.0.1:3100", "fintech-demo": "127.0.0.1:9400"}, targets)
	require.Contains(t, cfg.Storage, "exemplars")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(b), "--web.enable-remote-write-receiver")
	require.Contains(t, string(b), "--enable-feature=exemplar-storage")

	promtool := needHelper(t, "promtool")
	out, err := exec.Command(promtool, "check", "config", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "SUCCESS")

	// The dashboard's PromQL, checked by Prometheus' own parser.
	var rf strings.Builder
	rf.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range dashboardQueries(t, "prometheus") {
		fmt.Fprintf(&rf, "      - record: dashboard:q%d\n        expr: %q\n", i, q)
	}
	tmp := filepath.Join(t.TempDir(), "dashboard_rules.yml")
	require.NoError(t, os.WriteFile(tmp, []byte(rf.String()), 0o644))
	out, err = exec.Command(promtool, "check", "rules", tmp).CombinedOutput()
	require.NoError(t, err, "%s", out)
}

func TestDeployAlertmanager(t *testing.T) {
	var cfg struct {
		Global       map[string]any   `yaml:"global"`
		Route        map[string]any   `yaml:"route"`
		InhibitRules []map[string]any `yaml:"inhibit_rules"`
		Receivers    []struct {
			Name           string `yaml:"name"`
			WebhookConfigs []struct {
				URL          string `yaml:"url"`
				SendResolved bool   `yaml:"send_resolved"`
			} `yaml:"webhook_configs"`
		} `yaml:"receivers"`
	}
	path := deployPath("alertmanager.yml")
	readYAML(t, path, &cfg)
	require.Len(t, cfg.InhibitRules, 1)
	for _, r := range cfg.Receivers {
		require.Len(t, r.WebhookConfigs, 1)
		require.Equal(t, "http://127.0.0.1:9400/webhook/"+r.Name, r.WebhookConfigs[0].URL)
	}

	amtool := needHelper(t, "amtool")
	out, err := exec.Command(amtool, "check-config", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "SUCCESS")
	route := func(labels ...string) string {
		t.Helper()
		args := append([]string{"config", "routes", "test", "--config.file=" + path}, labels...)
		out, err := exec.Command(amtool, args...).Output()
		require.NoError(t, err)
		return strings.TrimSpace(string(out))
	}
	f := func(severity, team, want string) {
		t.Helper()
		require.Equal(t, want, route("severity="+severity, "team="+team, "alertname=X"), "%s/%s", severity, team)
	}
	f("critical", "fintech", "fintech-critical")
	f("warning", "fintech", "fintech-warning")
	f("critical", "security", "security-critical")
	f("warning", "security", "security-warning")
	f("critical", "compliance", "compliance-critical")
	f("warning", "compliance", "compliance-warning")
	f("critical", "payments-ops", "default")
}

func TestDeployPromtail(t *testing.T) {
	path := deployPath("promtail.yaml")
	cfg, err := agent.LoadConfig(path, false)
	require.NoError(t, err)
	require.Len(t, cfg.ScrapeConfigs, 1)
	sc := cfg.ScrapeConfigs[0]
	p, err := stages.NewPipeline(sc.PipelineStages, stages.Options{JobName: sc.JobName, TargetLabels: []string{"filename", "environment", "region"}})
	require.NoError(t, err)
	defer p.Close()
	require.Empty(t, p.Warnings(), "the tracing JSON shape warnings are gone")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(b), "message: fields.message")
	require.Contains(t, string(b), "event: fields.event")
}

// datasources is deploy/grafana/provisioning/datasources/ledgerlog.yaml.
type datasources struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name     string `yaml:"name"`
		UID      string `yaml:"uid"`
		Type     string `yaml:"type"`
		URL      string `yaml:"url"`
		JSONData struct {
			DerivedFields []struct {
				Name            string `yaml:"name"`
				MatcherRegex    string `yaml:"matcherRegex"`
				MatcherType     string `yaml:"matcherType"`
				DatasourceUID   string `yaml:"datasourceUid"`
				URL             string `yaml:"url"`
				URLDisplayLabel string `yaml:"urlDisplayLabel"`
			} `yaml:"derivedFields"`
			Exemplars []struct {
				Name            string `yaml:"name"`
				URL             string `yaml:"url"`
				DatasourceUID   string `yaml:"datasourceUid"`
				URLDisplayLabel string `yaml:"urlDisplayLabel"`
			} `yaml:"exemplarTraceIdDestinations"`
			Rest map[string]any `yaml:",inline"`
		} `yaml:"jsonData"`
		Rest map[string]any `yaml:",inline"`
	} `yaml:"datasources"`
}

// grafanaLink renders a provisioned link template the way Grafana does:
// "$$" is a literal "$" (env expansion), then ${__value.raw} is the value.
func grafanaLink(tmpl, value string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tmpl, "$$", "$"), "${__value.raw}", value)
}

func TestDeployGrafanaDatasources(t *testing.T) {
	var ds datasources
	readYAML(t, deployPath("grafana", "provisioning", "datasources", "ledgerlog.yaml"), &ds)
	byUID := map[string]int{}
	for i, d := range ds.Datasources {
		byUID[d.UID] = i
	}
	require.Contains(t, byUID, "ledgerlog")
	require.Contains(t, byUID, "prometheus")
	loki := ds.Datasources[byUID["ledgerlog"]]
	require.Equal(t, "loki", loki.Type)
	require.Equal(t, "http://127.0.0.1:3100", loki.URL)

	// A demo line with a trace_id: the derived field finds it and its link
	// is a LogQL query for that trace.
	var line, traceID string
	for _, r := range backfill(t, 1, Normal, 20, 5*time.Second, nil) {
		if r.TraceID != "" {
			line, traceID = r.Line, r.TraceID
			break
		}
	}
	require.NotEmpty(t, traceID)
	require.Len(t, loki.JSONData.DerivedFields, 1)
	df := loki.JSONData.DerivedFields[0]
	require.Equal(t, `"trace_id":"(\w+)"`, df.MatcherRegex)
	m := regexp.MustCompile(df.MatcherRegex).FindStringSubmatch(line)
	require.Equal(t, traceID, m[1])
	require.Equal(t, "ledgerlog", df.DatasourceUID)
	q := grafanaLink(df.URL, m[1])
	_, err := syntax.ParseLogSelector(q, true)
	require.NoError(t, err, q)
	require.Contains(t, q, traceID)

	// An exemplar's trace_id opens Explore on Ledgerlog with the same query.
	prom := ds.Datasources[byUID["prometheus"]]
	require.Equal(t, "prometheus", prom.Type)
	require.Len(t, prom.JSONData.Exemplars, 1)
	ex := prom.JSONData.Exemplars[0]
	require.Equal(t, "trace_id", ex.Name)
	u, err := url.Parse(grafanaLink(ex.URL, traceID))
	require.NoError(t, err)
	require.Equal(t, "/explore", u.Path)
	var left struct {
		Datasource string `json:"datasource"`
		Queries    []struct {
			Expr       string `json:"expr"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
		} `json:"queries"`
	}
	require.NoError(t, json.Unmarshal([]byte(u.Query().Get("left")), &left))
	require.Equal(t, "ledgerlog", left.Datasource)
	require.Equal(t, q, left.Queries[0].Expr, "the exemplar link and the derived field run the same query")
}

// dashboardQueries returns the expressions of the dashboard's targets on
// the data source of the given type.
func dashboardQueries(t *testing.T, dsType string) []string {
	t.Helper()
	b, err := os.ReadFile(deployPath("grafana", "dashboards", "fintech.json"))
	require.NoError(t, err)
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title      string `json:"title"`
			Type       string `json:"type"`
			Datasource struct {
				Type string `json:"type"`
				UID  string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr     string `json:"expr"`
				Exemplar bool   `json:"exemplar"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(b, &d))
	require.NotEmpty(t, d.UID)
	var out []string
	for _, p := range d.Panels {
		if p.Datasource.Type == dsType {
			for _, tg := range p.Targets {
				out = append(out, tg.Expr)
			}
		}
	}
	sort.Strings(out)
	return out
}

func TestDeployGrafanaDashboard(t *testing.T) {
	logql := dashboardQueries(t, "loki")
	require.GreaterOrEqual(t, len(logql), 5)
	for _, q := range logql {
		_, err := syntax.ParseExpr(q)
		require.NoError(t, err, q)
	}
	all := strings.Join(append(logql, dashboardQueries(t, "prometheus")...), "\n")
	for _, want := range []string{
		`|= "ERROR"`,                       // error rate
		"financial_transactions_total",     // transactions
		"histogram_quantile(0.99",          // p99 latency
		"COMPLIANCE_VIOLATION",             // compliance violations
		"financial_transaction_duration_s", // exemplars panel
	} {
		require.Contains(t, all, want)
	}
	b, err := os.ReadFile(deployPath("grafana", "dashboards", "fintech.json"))
	require.NoError(t, err)
	require.Contains(t, string(b), `"exemplar": true`)
}

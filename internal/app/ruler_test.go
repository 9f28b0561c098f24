package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ledgerlog/ledgerlog/internal/config"
)

// seedRules is the product brief's financial_alerts group, verbatim.
const seedRules = "../ruler/testdata/financial_alerts.yaml"

// fastRules are short-window rules so that the test takes seconds: an
// error-rate alert over a 3s window and a recording rule.
const fastRules = `groups:
  - name: payments_fast
    interval: 1s
    rules:
      - alert: PaymentErrorSpike
        expr: |
          (
            sum(rate({service="payment-processor"} |= "ERROR" [3s])) /
            sum(rate({service="payment-processor"}[3s]))
          ) > 0.05
        for: 1s
        labels:
          severity: critical
          team: fintech
        annotations:
          description: "Error rate is {{ $value }} for payment processor"
      - record: ledgerlog:payment_lines:count1m
        expr: sum by (service) (count_over_time({service="payment-processor"}[1m]))
        labels:
          source: ledgerlog
`

// externalProc is a real Prometheus or Alertmanager started by a test.
type externalProc struct {
	url  string
	logs *bytes.Buffer
}

// lookBinary finds the first of names on PATH or skips the test loudly.
func lookBinary(t *testing.T, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	t.Skipf("!!! SKIPPED: none of %v on PATH; install Debian's prometheus and prometheus-alertmanager (.ci/run does) to run the ruler integration test !!!", names)
	return ""
}

// startProc runs a binary until the test ends and waits for GET /-/ready.
func startProc(t *testing.T, bin string, port int, args ...string) *externalProc {
	t.Helper()
	p := &externalProc{url: fmt.Sprintf("http://127.0.0.1:%d", port), logs: &bytes.Buffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout = &syncWriter{w: p.logs}
	cmd.Stderr = cmd.Stdout
	cmd.WaitDelay = 10 * time.Second
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.url + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready:\n%s", bin, p.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", u, b)
	require.NoError(t, json.Unmarshal(b, v), "%s", b)
}

type amAlertOut struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Status       struct {
		State string `json:"state"`
	} `json:"status"`
}

func amAlerts(t *testing.T, am *externalProc, name string) []amAlertOut {
	t.Helper()
	var all []amAlertOut
	getJSON(t, am.url+"/api/v2/alerts", &all)
	var out []amAlertOut
	for _, a := range all {
		if a.Labels["alertname"] == name {
			out = append(out, a)
		}
	}
	return out
}

// eventually polls cond for up to limit.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool, logs ...*bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, l := range logs {
				b.WriteString(l.String())
			}
			t.Fatalf("timed out waiting for %s\n%s", what, b.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type promAlertsResp struct {
	Status string `json:"status"`
	Data   struct {
		Alerts []struct {
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
			State       string            `json:"state"`
			ActiveAt    time.Time         `json:"activeAt"`
			Value       string            `json:"value"`
		} `json:"alerts"`
	} `json:"data"`
}

// The ruler against the real Alertmanager and Prometheus: the seed's
// ComplianceViolation alert reaches Alertmanager with its labels and
// annotations, an error-rate alert fires during an error spike and is
// resolved after it, and a recording rule's series is queryable in
// Prometheus.
func TestRulerWithPrometheusAndAlertmanager(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus and Alertmanager")
	}
	promBin := lookBinary(t, "prometheus")
	amBin := lookBinary(t, "alertmanager", "prometheus-alertmanager")

	work := t.TempDir()
	amCfg := filepath.Join(work, "alertmanager.yml")
	require.NoError(t, os.WriteFile(amCfg, []byte("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n"), 0o644))
	amPort := freePort(t)
	am := startProc(t, amBin, amPort,
		"--config.file="+amCfg, "--storage.path="+filepath.Join(work, "am"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", amPort), "--cluster.listen-address=", "--log.level=warn")

	promCfg := filepath.Join(work, "prometheus.yml")
	require.NoError(t, os.WriteFile(promCfg, []byte("global:\n  scrape_interval: 1m\n"), 0o644))
	promPort := freePort(t)
	prom := startProc(t, promBin, promPort,
		"--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(work, "prom"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", promPort), "--web.enable-remote-write-receiver", "--log.level=warn")

	dir := tempDir(t)
	seed, err := os.ReadFile(seedRules)
	require.NoError(t, err)
	rulesDir := filepath.Join(work, "rules", "fake")
	require.NoError(t, os.MkdirAll(rulesDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(rulesDir, "financial.yaml"), seed, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(rulesDir, "payments.yaml"), []byte(fastRules), 0o644))
	cfgPath := filepath.Join(work, "ledgerlog.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(`ruler:
  alertmanager_url: %s
  evaluation_interval: 1s
  poll_interval: 1s
  resend_delay: 1m
  external_labels:
    cluster: integration
  remote_write:
    enabled: true
    client:
      url: %s/api/v1/write
ruler_storage:
  backend: local
  local:
    directory: %s
`, am.url, prom.url, filepath.Join(work, "rules"))), 0o644))
	s := startServer(t, dir, "-config.file", cfgPath)
	logs := []*bytes.Buffer{s.logs, am.logs, prom.logs}

	// 1. A compliance violation in the logs fires the seed's alert.
	now := time.Now()
	r := s.pushJSON(map[string]string{"service": "ledger-core", "env": "prod"}, []int64{now.UnixNano()}, []string{"txn=7731 COMPLIANCE_VIOLATION: sanctioned counterparty"})
	require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
	var cv amAlertOut
	eventually(t, 30*time.Second, "ComplianceViolation in Alertmanager", func() bool {
		got := amAlerts(t, am, "ComplianceViolation")
		if len(got) == 0 {
			return false
		}
		cv = got[0]
		return true
	}, logs...)
	require.Equal(t, "critical", cv.Labels["severity"])
	require.Equal(t, "compliance", cv.Labels["team"])
	require.Equal(t, "ledger-core", cv.Labels["service"])
	require.Equal(t, "integration", cv.Labels["cluster"], "external label")
	require.Equal(t, "Compliance violation detected", cv.Annotations["summary"])
	require.Equal(t, "Compliance violation found in logs", cv.Annotations["description"])
	require.Equal(t, "active", cv.Status.State)
	require.True(t, strings.HasPrefix(cv.GeneratorURL, s.url+"/loki/api/v1/query?query="), cv.GeneratorURL)
	gen, err := url.Parse(cv.GeneratorURL)
	require.NoError(t, err)
	require.Contains(t, gen.Query().Get("query"), `COMPLIANCE_VIOLATION`)

	// 2. An error spike fires the error-rate alert; it resolves after.
	push := func(lines ...string) {
		ts := make([]int64, len(lines))
		base := time.Now().UnixNano()
		for i := range ts {
			ts[i] = base + int64(i)
		}
		r := s.pushJSON(map[string]string{"service": "payment-processor"}, ts, lines)
		require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
	}
	var spike amAlertOut
	eventually(t, 30*time.Second, "PaymentErrorSpike in Alertmanager", func() bool {
		push("level=ERROR msg=\"card declined upstream\"", "level=INFO msg=ok", "level=ERROR msg=timeout")
		got := amAlerts(t, am, "PaymentErrorSpike")
		if len(got) == 0 {
			return false
		}
		spike = got[0]
		return true
	}, logs...)
	require.Equal(t, "fintech", spike.Labels["team"])
	require.Contains(t, spike.Annotations["description"], "Error rate is 0.")
	// Valid for 4 resend delays unless resolved: seeing it go within
	// seconds shows the resolution was sent.
	require.True(t, spike.EndsAt.Sub(spike.StartsAt) > 3*time.Minute, "endsAt %s", spike.EndsAt)

	eventually(t, 30*time.Second, "PaymentErrorSpike resolved", func() bool {
		push("level=INFO msg=ok", "level=INFO msg=settled")
		return len(amAlerts(t, am, "PaymentErrorSpike")) == 0
	}, logs...)
	var pa promAlertsResp
	getJSON(t, s.url+"/prometheus/api/v1/alerts", &pa)
	for _, a := range pa.Data.Alerts {
		require.NotEqual(t, "PaymentErrorSpike", a.Labels["alertname"])
	}

	// 3. The recording rule's series is in Prometheus.
	eventually(t, 30*time.Second, "recorded series in Prometheus", func() bool {
		var qr struct {
			Status string `json:"status"`
			Data   struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
					Value  []any             `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		getJSON(t, prom.url+"/api/v1/query?query="+url.QueryEscape("ledgerlog:payment_lines:count1m"), &qr)
		if len(qr.Data.Result) == 0 {
			return false
		}
		m := qr.Data.Result[0].Metric
		require.Equal(t, "payment-processor", m["service"])
		require.Equal(t, "ledgerlog", m["source"])
		require.Equal(t, "integration", m["cluster"])
		return true
	}, logs...)

	// The Prometheus-format rules API shows the groups Grafana reads.
	var rules struct {
		Status string `json:"status"`
		Data   struct {
			Groups []struct {
				Name  string `json:"name"`
				File  string `json:"file"`
				Rules []struct {
					Name   string `json:"name"`
					Type   string `json:"type"`
					Health string `json:"health"`
					State  string `json:"state"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	getJSON(t, s.url+"/prometheus/api/v1/rules", &rules)
	require.Len(t, rules.Data.Groups, 2)
	require.Equal(t, "financial_alerts", rules.Data.Groups[0].Name)
	require.Equal(t, "financial", rules.Data.Groups[0].File)
	for _, g := range rules.Data.Groups {
		for _, r := range g.Rules {
			require.Equal(t, "ok", r.Health, "rule %s", r.Name)
		}
	}
	require.Equal(t, "firing", rules.Data.Groups[0].Rules[2].State)

	metrics := s.get("/metrics", nil)
	for _, m := range []string{
		`loki_prometheus_rule_evaluations_total{rule_group="financial;financial_alerts",user="fake"}`,
		"loki_prometheus_notifications_sent_total{alertmanager=",
		`loki_ruler_remote_write_samples_total{remote_name="default"}`,
		`loki_prometheus_rule_group_rules{rule_group="payments;payments_fast",user="fake"} 2`,
	} {
		require.Contains(t, string(metrics.body), m)
	}
}

// A pending `for: 10m` alert keeps its activeAt across a server restart.
func TestRulerRestartKeepsPendingAlert(t *testing.T) {
	dir := tempDir(t)
	rulesDir := filepath.Join(dir, "rules", "fake")
	require.NoError(t, os.MkdirAll(rulesDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(rulesDir, "ledger.yaml"), []byte(`groups:
  - name: slow
    rules:
      - alert: RetryStorm
        expr: sum(count_over_time({service="ledger"} |= "retry" [1h])) > 0
        for: 10m
        labels:
          severity: warning
`), 0o644))
	flags := []string{"-ruler.evaluation-interval", "1s", "-ruler.poll-interval", "1s"}
	s := startServer(t, dir, flags...)
	r := s.pushJSON(map[string]string{"service": "ledger"}, []int64{time.Now().UnixNano()}, []string{"retry 1 of 5"})
	require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)

	pending := func(s *testServer) (time.Time, bool) {
		var pa promAlertsResp
		getJSON(t, s.url+"/prometheus/api/v1/alerts", &pa)
		for _, a := range pa.Data.Alerts {
			if a.Labels["alertname"] == "RetryStorm" && a.State == "pending" {
				return a.ActiveAt, true
			}
		}
		return time.Time{}, false
	}
	var before time.Time
	eventually(t, 30*time.Second, "pending alert", func() bool {
		var ok bool
		before, ok = pending(s)
		return ok
	}, s.logs)
	s.stop()

	restart := time.Now()
	s2 := startServer(t, dir, flags...)
	eventually(t, 30*time.Second, "evaluation after restart", func() bool {
		var rules struct {
			Data struct {
				Groups []struct {
					LastEvaluation time.Time `json:"lastEvaluation"`
				} `json:"groups"`
			} `json:"data"`
		}
		getJSON(t, s2.url+"/prometheus/api/v1/rules", &rules)
		return len(rules.Data.Groups) == 1 && rules.Data.Groups[0].LastEvaluation.After(restart)
	}, s2.logs)
	after, ok := pending(s2)
	require.True(t, ok, "still pending after restart")
	require.True(t, before.Equal(after), "activeAt %s became %s", before, after)
}

// A Loki ruler configuration loads: supported keys apply, keys of Loki's
// distributed ruler are named in warnings.
func TestLokiRulerConfigLoads(t *testing.T) {
	p := filepath.Join(t.TempDir(), "loki.yaml")
	require.NoError(t, os.WriteFile(p, []byte(`common:
  path_prefix: /var/lib/loki
ruler:
  storage:
    type: local
    local:
      directory: /etc/loki/rules
  rule_path: /var/lib/loki/rules-temp
  alertmanager_url: http://am-1:9093,http://am-2:9093/prefix
  ring:
    kvstore:
      store: inmemory
  enable_api: true
  enable_alertmanager_v2: true
  wal:
    dir: /var/lib/loki/ruler-wal
  remote_write:
    enabled: true
    clients:
      prom:
        url: http://prometheus:9090/api/v1/write
        basic_auth: {username: u, password: p}
`), 0o644))
	l, err := config.Parse("server", []string{"-config.file", p}, io.Discard)
	require.NoError(t, err)
	c := l.Config
	require.Equal(t, "/etc/loki/rules", c.Ruler.RuleDir(c.RulerStorage, c.Common.PathPrefix))
	require.Equal(t, "/var/lib/loki/rules-temp", c.Ruler.StateDir(c.Common.PathPrefix))
	ams, err := c.Ruler.AlertmanagerURLs()
	require.NoError(t, err)
	require.Len(t, ams, 2)
	joined := strings.Join(l.Warnings, "\n")
	for _, k := range []string{"ruler.ring", "ruler.enable_alertmanager_v2", "ruler.wal"} {
		require.Contains(t, joined, "config key "+k+" ")
	}

	// ruler_storage takes precedence, with Loki's filesystem backend.
	require.NoError(t, os.WriteFile(p, []byte("ruler_storage:\n  backend: filesystem\n  filesystem:\n    dir: /srv/rules\n"), 0o644))
	l, err = config.Parse("server", []string{"-config.file", p}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "/srv/rules", l.Config.Ruler.RuleDir(l.Config.RulerStorage, l.Config.Common.PathPrefix))

	// Unsupported backends fail with a clear message.
	require.NoError(t, os.WriteFile(p, []byte("ruler_storage:\n  backend: s3\n  s3:\n    bucketnames: rules\n"), 0o644))
	_, err = config.Parse("server", []string{"-config.file", p}, io.Discard)
	require.ErrorContains(t, err, `ruler_storage.backend "s3": only local and filesystem rule storage are built in`)
}

package app

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/ledgerlog/ledgerlog/internal/demo"
)

// The rule files the end-to-end test loads: the loadable seed group and the
// recording rules of the deploy directory, and the verbatim seed that the
// alerts' labels and annotations must match.
const (
	deployAlertRules     = "../../deploy/rules/fake/financial_alerts.yaml"
	deployRecordingRules = "../../deploy/rules/fake/fintech_recording.yaml"
	seedAlertRules       = "../../deploy/seed/financial_alerts.seed.yaml"
)

// e2eRecordedSeries is the recording rule the test loads next to the alerts:
// the error ratio that HighErrorRate compares with 0.05.
const e2eRecordedSeries = "fintech:payment_error_ratio:rate5m"

// e2eRuleFile is the part of a rule file the test reads back.
type e2eRuleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readE2ERuleFile(t *testing.T, path string) e2eRuleFile {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var f e2eRuleFile
	require.NoError(t, yaml.Unmarshal(b, &f), path)
	return f
}

// e2eFastWindows shortens the time constants of a rule file so that the
// test takes seconds instead of minutes. Only these change: HighErrorRate's
// `for: 2m` and the [5m] ratio window. ComplianceViolation keeps its `for:
// 0s` and its [1h] window (it fires on the first violation either way, and
// keeps firing through the rest of the test); SuspiciousTransactionPattern
// is untouched. Every replacement must match exactly as often as the deploy
// file has it, so a change of the file fails here rather than silently
// testing something else.
func e2eFastWindows(t *testing.T, text string, wantFor2m, wantRange5m int) string {
	t.Helper()
	require.Equal(t, wantFor2m, strings.Count(text, "for: 2m\n"), "`for: 2m` in the rule file")
	require.Equal(t, wantRange5m, strings.Count(text, "[5m]"), "[5m] windows in the rule file")
	text = strings.ReplaceAll(text, "for: 2m\n", "for: 2s\n")
	return strings.ReplaceAll(text, "[5m]", "[10s]")
}

// e2eAMAlerts returns Alertmanager's active alerts (GET /api/v2/alerts,
// which leaves out resolved ones) and a one-line-per-alert description of
// them for failure messages.
func e2eAMAlerts(t *testing.T, am *externalProc) ([]amAlertOut, string) {
	t.Helper()
	var all []amAlertOut
	getJSON(t, am.url+"/api/v2/alerts", &all)
	lines := make([]string, 0, len(all))
	for _, a := range all {
		keys := make([]string, 0, len(a.Labels))
		for k := range a.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(k + "=" + a.Labels[k])
		}
		lines = append(lines, fmt.Sprintf("  {%s} state=%s startsAt=%s endsAt=%s annotations=%v",
			b.String(), a.Status.State, a.StartsAt.Format(time.RFC3339), a.EndsAt.Format(time.RFC3339), a.Annotations))
	}
	if len(lines) == 0 {
		return all, "  (no active alerts)"
	}
	return all, strings.Join(lines, "\n")
}

func e2eFilter(alerts []amAlertOut, name string) []amAlertOut {
	var out []amAlertOut
	for _, a := range alerts {
		if a.Labels["alertname"] == name {
			out = append(out, a)
		}
	}
	return out
}

// e2ePromSample is one element of a Prometheus instant-query vector.
type e2ePromSample struct {
	Metric map[string]string `json:"metric"`
	Value  float64
}

// e2ePromQuery runs an instant query against Prometheus' HTTP API.
func e2ePromQuery(t *testing.T, prom *externalProc, q string) []e2ePromSample {
	t.Helper()
	var qr struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  []any             `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	getJSON(t, prom.url+"/api/v1/query?query="+url.QueryEscape(q), &qr)
	require.Equal(t, "success", qr.Status, q)
	require.Equal(t, "vector", qr.Data.ResultType, q)
	out := make([]e2ePromSample, 0, len(qr.Data.Result))
	for _, r := range qr.Data.Result {
		require.Len(t, r.Value, 2, q)
		s, ok := r.Value[1].(string)
		require.True(t, ok, "%s: value %v", q, r.Value)
		v, err := strconv.ParseFloat(s, 64)
		require.NoError(t, err, q)
		out = append(out, e2ePromSample{Metric: r.Metric, Value: v})
	}
	return out
}

// e2eWait polls cond every 200ms for up to limit. cond reports whether it
// holds and what it saw; on timeout the test fails with the last
// observation and the processes' logs.
func e2eWait(t *testing.T, limit time.Duration, what string, logs []*bytes.Buffer, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, l := range logs {
				b.WriteString(l.String())
			}
			t.Fatalf("timed out after %s waiting for %s; last seen:\n%s\nlogs:\n%s", limit, what, seen, b.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var e2eErrorRateDescription = regexp.MustCompile(`^Error rate is ([0-9.eE+-]+) for payment processor$`)

// TestDemoScenariosAlertEndToEnd runs the product's alerting path as a user
// does, with real processes on loopback ports: the demo pushes live traffic
// to a Ledgerlog server, whose ruler evaluates the seed's financial_alerts
// group (deploy/rules) every second, sends alerts to a real Alertmanager and
// remote-writes a recording rule to a real Prometheus. Switching the demo's
// scenario makes ComplianceViolation fire (read back from Alertmanager with
// the seed's labels and annotations), then HighErrorRate fire during an
// error spike and resolve after it; the recorded error ratio is queryable
// in Prometheus and shows the spike.
func TestDemoScenariosAlertEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus, Alertmanager, a server and the demo for ~30s")
	}
	promBin := lookBinary(t, "prometheus")
	amBin := lookBinary(t, "alertmanager", "prometheus-alertmanager")

	// The seed's labels and annotations are what Alertmanager must show.
	seed := map[string]struct{ labels, annotations map[string]string }{}
	for _, g := range readE2ERuleFile(t, seedAlertRules).Groups {
		for _, r := range g.Rules {
			seed[r.Alert] = struct{ labels, annotations map[string]string }{r.Labels, r.Annotations}
		}
	}
	require.Contains(t, seed, "ComplianceViolation")
	require.Contains(t, seed, "HighErrorRate")

	// The rule directory: the deploy file's financial_alerts group with
	// shortened windows, and one recording rule from the deploy recording
	// file with the same window change, in a group of its own.
	work := t.TempDir()
	rulesDir := filepath.Join(work, "rules", "fake")
	require.NoError(t, os.MkdirAll(rulesDir, 0o755))
	alertText, err := os.ReadFile(deployAlertRules)
	require.NoError(t, err)
	fast := e2eFastWindows(t, string(alertText), 1, 2)
	require.NoError(t, os.WriteFile(filepath.Join(rulesDir, "financial_alerts.yaml"), []byte(fast), 0o644))
	loaded := readE2ERuleFile(t, filepath.Join(rulesDir, "financial_alerts.yaml"))
	require.Len(t, loaded.Groups, 1)
	require.Equal(t, "financial_alerts", loaded.Groups[0].Name)
	for _, r := range loaded.Groups[0].Rules {
		// The loadable file keeps the seed's labels; only
		// SuspiciousTransactionPattern's description is corrected
		// (docs/alerting.md, "Differences from the seed").
		require.Equal(t, seed[r.Alert].labels, r.Labels, r.Alert)
		if r.Alert != "SuspiciousTransactionPattern" {
			require.Equal(t, seed[r.Alert].annotations, r.Annotations, r.Alert)
		}
	}
	var recordingExpr string
	for _, g := range readE2ERuleFile(t, deployRecordingRules).Groups {
		for _, r := range g.Rules {
			if r.Record == e2eRecordedSeries {
				recordingExpr = r.Expr
			}
		}
	}
	require.NotEmpty(t, recordingExpr, "%s in %s", e2eRecordedSeries, deployRecordingRules)
	recording, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{
		"name":  "e2e_recording",
		"rules": []any{map[string]string{"record": e2eRecordedSeries, "expr": e2eFastWindows(t, recordingExpr, 0, 2)}},
	}}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(rulesDir, "e2e_recording.yaml"), recording, 0o644))

	// Alertmanager and Prometheus, on loopback, with their data in work.
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

	// The server: ruler every second, alerts to Alertmanager, recording
	// rules to Prometheus.
	cfgPath := filepath.Join(work, "ledgerlog.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(`ruler:
  alertmanager_url: %s
  evaluation_interval: 1s
  poll_interval: 1s
  remote_write:
    enabled: true
    client:
      url: %s/api/v1/write
ruler_storage:
  backend: local
  local:
    directory: %s
`, am.url, prom.url, filepath.Join(work, "rules"))), 0o644))
	s := startServer(t, tempDir(t), "-config.file", cfgPath)
	logs := []*bytes.Buffer{s.logs, am.logs, prom.logs}

	// The demo, in-process, pushing live traffic. It starts 15s in the
	// past so that the 10s windows are full of normal traffic from the
	// first evaluation: a half-empty window could make one early ERROR
	// line look like an error spike.
	ctrl := demo.NewController(demo.Normal, nil)
	push, err := demo.NewPushSink(demo.PushOptions{URL: s.url, BatchWait: 200 * time.Millisecond})
	require.NoError(t, err)
	demoCtx, stopDemo := context.WithCancel(context.Background())
	type demoResult struct {
		stats demo.Stats
		err   error
	}
	demoDone := make(chan demoResult, 1)
	go func() {
		st, err := demo.Run(demoCtx, demo.NewGenerator(demo.Options{Seed: 11}), ctrl, nil, []demo.Sink{push},
			demo.RunOptions{Rate: 100, Start: time.Now().Add(-15 * time.Second)})
		demoDone <- demoResult{st, err}
	}()
	// Registered after startServer's cleanup, so it runs first: the demo
	// flushes into a running server.
	t.Cleanup(func() {
		stopDemo()
		select {
		case r := <-demoDone:
			require.NoError(t, r.err)
			t.Logf("demo: pushed=%d dropped=%d %s", push.Pushed, push.Dropped, r.stats)
		case <-time.After(30 * time.Second):
			t.Error("demo did not stop")
		}
	})

	// 1. Normal traffic: the ruler evaluates and remote-writes the
	// recorded ratio; no alert of the group reaches Alertmanager.
	e2eWait(t, 20*time.Second, e2eRecordedSeries+" in Prometheus during normal traffic", logs, func() (bool, string) {
		got := e2ePromQuery(t, prom, e2eRecordedSeries)
		return len(got) == 1, fmt.Sprintf("  %v", got)
	})
	all, seen := e2eAMAlerts(t, am)
	require.Empty(t, all, "alerts during normal traffic:\n%s", seen)
	phase := time.Now()

	// 2. Compliance violations: ComplianceViolation (for: 0s) fires on
	// the first violation line, which the demo writes 5s into the
	// scenario, one stream per service.
	ctrl.Set(demo.ComplianceViolation, 0)
	var cv amAlertOut
	e2eWait(t, 30*time.Second, "ComplianceViolation in Alertmanager", logs, func() (bool, string) {
		all, seen := e2eAMAlerts(t, am)
		got := e2eFilter(all, "ComplianceViolation")
		if len(got) == 0 {
			return false, seen
		}
		cv = got[0]
		return true, seen
	})
	for k, v := range seed["ComplianceViolation"].labels {
		require.Equal(t, v, cv.Labels[k], "label %s", k)
	}
	require.Equal(t, "critical", cv.Labels["severity"])
	require.Equal(t, "compliance", cv.Labels["team"])
	require.Equal(t, seed["ComplianceViolation"].annotations, cv.Annotations)
	require.Equal(t, "Compliance violation detected", cv.Annotations["summary"])
	require.Equal(t, "Compliance violation found in logs", cv.Annotations["description"])
	require.Contains(t, []string{"ledger", "kyc-service", "payment-gateway"}, cv.Labels["service"], "labels %v", cv.Labels)
	require.Equal(t, "error", cv.Labels["level"])
	require.Equal(t, "active", cv.Status.State)
	require.True(t, strings.HasPrefix(cv.GeneratorURL, s.url+"/"), cv.GeneratorURL)
	t.Logf("ComplianceViolation in Alertmanager %s after the switch: %v %v", time.Since(phase).Round(100*time.Millisecond), cv.Labels, cv.Annotations)
	all, seen = e2eAMAlerts(t, am)
	require.Empty(t, e2eFilter(all, "HighErrorRate"), "HighErrorRate before the error spike:\n%s", seen)

	// 3. Error spike: 30% of payment-processor lines are errors; the
	// ratio over 10s passes 0.05 within about two seconds, then `for: 2s`.
	ctrl.Set(demo.ErrorSpike, 0)
	phase = time.Now()
	var spike amAlertOut
	e2eWait(t, 30*time.Second, "HighErrorRate in Alertmanager during the error spike", logs, func() (bool, string) {
		all, seen := e2eAMAlerts(t, am)
		got := e2eFilter(all, "HighErrorRate")
		if len(got) == 0 {
			return false, seen
		}
		spike = got[0]
		return true, seen
	})
	require.Equal(t, seed["HighErrorRate"].labels["severity"], spike.Labels["severity"])
	require.Equal(t, seed["HighErrorRate"].labels["team"], spike.Labels["team"])
	require.Equal(t, "critical", spike.Labels["severity"])
	require.Equal(t, "fintech", spike.Labels["team"])
	require.Equal(t, seed["HighErrorRate"].annotations["summary"], spike.Annotations["summary"])
	m := e2eErrorRateDescription.FindStringSubmatch(spike.Annotations["description"])
	require.NotNil(t, m, "description %q", spike.Annotations["description"])
	ratio, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	require.Greater(t, ratio, 0.05, "the alert's $value is the error ratio")
	t.Logf("HighErrorRate in Alertmanager %s after the switch: %v %v", time.Since(phase).Round(100*time.Millisecond), spike.Labels, spike.Annotations)
	// A firing alert is valid for minutes unless resolved, so seeing it
	// leave within the wait below shows that a resolution was sent.
	require.Greater(t, time.Until(spike.EndsAt), time.Minute, "endsAt %s", spike.EndsAt)

	// 4. Back to normal: once the 10s window holds less than 5% errors the
	// ruler resolves the alert and Alertmanager no longer lists it as
	// active. ComplianceViolation's 1h window keeps it firing.
	ctrl.Set(demo.Normal, 0)
	phase = time.Now()
	e2eWait(t, 30*time.Second, "HighErrorRate resolved in Alertmanager after the error spike", logs, func() (bool, string) {
		all, seen := e2eAMAlerts(t, am)
		return len(e2eFilter(all, "HighErrorRate")) == 0, seen
	})
	t.Logf("HighErrorRate resolved %s after the switch back", time.Since(phase).Round(100*time.Millisecond))
	all, seen = e2eAMAlerts(t, am)
	require.NotEmpty(t, e2eFilter(all, "ComplianceViolation"), "ComplianceViolation still fires:\n%s", seen)
	var pa promAlertsResp
	getJSON(t, s.url+"/prometheus/api/v1/alerts", &pa)
	for _, a := range pa.Data.Alerts {
		require.NotEqual(t, "HighErrorRate", a.Labels["alertname"], "ruler still lists %v as %s", a.Labels, a.State)
	}

	// 5. The recording rule's series in Prometheus: its history holds the
	// spike, its latest value is back under the threshold.
	e2eWait(t, 20*time.Second, e2eRecordedSeries+" in Prometheus after the error spike", logs, func() (bool, string) {
		now := e2ePromQuery(t, prom, e2eRecordedSeries)
		peak := e2ePromQuery(t, prom, "max_over_time("+e2eRecordedSeries+"[5m])")
		seen := fmt.Sprintf("  now=%v peak=%v", now, peak)
		return len(now) == 1 && now[0].Value < 0.05 && len(peak) == 1 && peak[0].Value > 0.05, seen
	})
	got := e2ePromQuery(t, prom, e2eRecordedSeries)
	require.Len(t, got, 1)
	require.Equal(t, e2eRecordedSeries, got[0].Metric["__name__"])
	t.Logf("Prometheus: %s = %g", e2eRecordedSeries, got[0].Value)
}

package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// runDemo runs `ledgerlog demo` to completion (the args must bound it).
func runDemo(t *testing.T, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, RunDemo(ctx, args, io.Discard, &stderr), stderr.String())
	return stderr.String()
}

// ndjsonRecords reads the demo's -out file.
func ndjsonRecords(t *testing.T, path string) []struct {
	Labels string `json:"labels"`
	TS     int64  `json:"ts"`
	Line   string `json:"line"`
} {
	t.Helper()
	fh, err := os.Open(path)
	require.NoError(t, err)
	defer fh.Close()
	var out []struct {
		Labels string `json:"labels"`
		TS     int64  `json:"ts"`
		Line   string `json:"line"`
	}
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r struct {
			Labels string `json:"labels"`
			TS     int64  `json:"ts"`
			Line   string `json:"line"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		out = append(out, r)
	}
	require.NoError(t, sc.Err())
	return out
}

func TestDemoPushLandsInServer(t *testing.T) {
	s := startServer(t, tempDir(t))
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	out := filepath.Join(t.TempDir(), "demo.ndjson")
	summary := runDemo(t, "-push-url", s.url, "-listen=", "-seed", "9", "-rate", "20",
		"-start", start.Format(time.RFC3339), "-duration", "2m", "-out", out)
	require.Contains(t, summary, "dropped")

	want := map[string]string{} // ts/line of payment-processor lines
	for _, r := range ndjsonRecords(t, out) {
		ls, err := model.ParseLabels(r.Labels)
		require.NoError(t, err)
		if ls.Get("service") == "payment-processor" {
			want[strconv.FormatInt(r.TS, 10)+"\t"+r.Line] = ls.Get("level")
		}
	}
	require.Greater(t, len(want), 400)

	rows, _ := s.queryRange(`{service="payment-processor"}`, start.UnixNano(), start.Add(3*time.Minute).UnixNano(), 5000, "forward")
	require.Len(t, rows, len(want))
	for _, row := range rows {
		parts := strings.SplitN(row, "\t", 3)
		level, ok := want[parts[1]+"\t"+parts[2]]
		require.True(t, ok, row)
		require.Contains(t, parts[0], "level="+level)
		require.Contains(t, parts[0], "environment=prod")
		require.Contains(t, parts[0], "region=eu-west")
	}

	// `| json` on the stored lines gives the names the seed's queries use.
	rows, _ = s.queryRange(`{service="payment-processor"} | json | fields_event="transaction_completed" and fields_amount > 0 and fields_processing_time_ms >= 1 and fields_currency=~"[A-Z]{3}"`,
		start.UnixNano(), start.Add(3*time.Minute).UnixNano(), 5000, "forward")
	require.NotEmpty(t, rows)
}

// instant runs an instant metric query and returns "labels=value" rows; a
// non-200 answer is returned as its body.
func (s *testServer) instant(q string, at time.Time) ([]string, error) {
	s.t.Helper()
	r := s.get("/loki/api/v1/query", url.Values{"query": {q}, "time": {strconv.FormatInt(at.UnixNano(), 10)}})
	if r.status != http.StatusOK {
		return nil, fmt.Errorf("%d: %s", r.status, r.body)
	}
	var res struct {
		Data struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  []any             `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	require.NoError(s.t, json.Unmarshal(r.body, &res))
	require.Equal(s.t, "vector", res.Data.ResultType)
	var rows []string
	for _, v := range res.Data.Result {
		rows = append(rows, labelString(v.Metric)+"="+fmt.Sprint(v.Value[1]))
	}
	return rows, nil
}

type demoRule struct {
	Alert  string `yaml:"alert"`
	Record string `yaml:"record"`
	Expr   string `yaml:"expr"`
}

func loadDemoRules(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var f struct {
		Groups []struct {
			Rules []demoRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	require.NoError(t, yaml.Unmarshal(b, &f))
	out := map[string]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out[r.Alert+r.Record] = r.Expr
		}
	}
	return out
}

// TestDemoScenariosFireAlertRules pins docs/alerting.md's table: pushed
// through a real server, each scenario makes exactly its alert expression
// return samples, evaluated the way the ruler evaluates it (an instant
// query at the end of the scenario's window).
func TestDemoScenariosFireAlertRules(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes ~30k lines")
	}
	s := startServer(t, tempDir(t))
	rules := loadDemoRules(t, "../../deploy/rules/fake/financial_alerts.yaml")
	for k, v := range loadDemoRules(t, "../../deploy/rules/fake/fintech_recording.yaml") {
		rules[k] = v
	}
	seed := loadDemoRules(t, "../../deploy/seed/financial_alerts.seed.yaml")

	alerts := []string{"HighErrorRate", "SuspiciousTransactionPattern", "KYCVerificationFailureWave", "ComplianceViolation"}
	windows := []struct {
		scenario string
		fires    string // the one alert expected to fire; "" for none
	}{
		{"normal", ""},
		{"error-spike", "HighErrorRate"},
		{"fraud-burst", "SuspiciousTransactionPattern"},
		{"kyc-failures", "KYCVerificationFailureWave"},
		// Last: its [1h] window would cover every later window.
		{"compliance-violation", "ComplianceViolation"},
	}
	// Windows are more than 10m apart, the longest range of these
	// expressions other than ComplianceViolation's [1h].
	const window, gap = 6 * time.Minute, 5 * time.Minute
	base := time.Now().Add(-time.Duration(len(windows)) * (window + gap)).Add(-time.Minute).Truncate(time.Second)
	for i, w := range windows {
		start := base.Add(time.Duration(i) * (window + gap))
		runDemo(t, "-push-url", s.url, "-listen=", "-seed", strconv.Itoa(20+i), "-rate", "10",
			"-scenario", w.scenario, "-start", start.Format(time.RFC3339), "-duration", window.String())
	}
	for i, w := range windows {
		at := base.Add(time.Duration(i)*(window+gap) + window)
		for _, name := range alerts {
			rows, err := s.instant(rules[name], at)
			require.NoError(t, err, name)
			require.Equal(t, name == w.fires, len(rows) > 0, "%s during %s: %v", name, w.scenario, rows)
			if name == w.fires {
				t.Logf("%s fires during %s: %v", name, w.scenario, rows)
			}
		}
		// The seed's per-stream division fires whenever a payment-processor
		// ERROR line is in the window, so during normal traffic too.
		rows, err := s.instant(seed["HighErrorRate"], at)
		require.NoError(t, err)
		require.NotEmpty(t, rows, "seed HighErrorRate during %s", w.scenario)
		for _, r := range rows {
			require.Contains(t, r, "level=error")
			require.True(t, strings.HasSuffix(r, "=1"), r)
		}
		// Every recording rule evaluates.
		for name, expr := range rules {
			_, err := s.instant(expr, at)
			require.NoError(t, err, name)
		}
	}
	// The seed's ComplianceViolation ({service=~".*"}) runs on Ledgerlog
	// unless limits_config.require_selective_matcher is set (Loki always
	// rejects it), and fires per stream.
	rows, err := s.instant(seed["ComplianceViolation"], base.Add(4*(window+gap)+window))
	require.NoError(t, err)
	require.Len(t, rows, 3, "one series per service stream with violations")
	rows, err = s.instant(seed["ComplianceViolation"], base.Add(3*(window+gap)+window))
	require.NoError(t, err)
	require.Empty(t, rows)

	// Recording rules show the incident's shape.
	kycAt := base.Add(3*(window+gap) + window)
	rows, err = s.instant(rules["fintech:kyc_verification_failures:rate10m"], kycAt)
	require.NoError(t, err)
	require.NotEmpty(t, rows)
	top := ""
	topV := 0.0
	for _, r := range rows {
		f, err := strconv.ParseFloat(r[strings.LastIndex(r, "=")+1:], 64)
		require.NoError(t, err)
		if f > topV {
			top, topV = r, f
		}
	}
	require.True(t, strings.HasPrefix(top, "country=NG="), "NG leads the KYC failure wave: %v", rows)
	fraudAt := base.Add(2*(window+gap) + window)
	rows, err = s.instant(rules["fintech:high_risk_transactions:count5m"], fraudAt)
	require.NoError(t, err)
	require.Len(t, rows, 1)
	n, err := strconv.ParseFloat(rows[0][strings.LastIndex(rows[0], "=")+1:], 64)
	require.NoError(t, err)
	require.Greater(t, n, 5*60*10.0, "fraud burst lines all score > 0.8")
}

var exemplarRE = regexp.MustCompile(`financial_transaction_duration_seconds_bucket\{[^}]*\} \d+ # \{trace_id="([0-9a-f]{32})"\}`)

// TestDemoLive runs the demo as a user does: live, pushing to a server,
// serving /metrics, /scenario and /webhook.
func TestDemoLive(t *testing.T) {
	s := startServer(t, tempDir(t))
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncWriter
	stderr.w = &bytes.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- RunDemo(ctx, []string{"-push-url", s.url, "-listen", fmt.Sprintf("127.0.0.1:%d", port),
			"-rate", "200", "-batch-wait", "200ms", "-seed", "4"}, io.Discard, &stderr)
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("demo did not stop")
		}
	}()

	get := func(path string, header ...string) string {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		require.NoError(t, err)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
		return string(b)
	}
	// Wait for the listener and for a transaction with an exemplar.
	var traceID string
	deadline := time.Now().Add(20 * time.Second)
	for traceID == "" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		resp, err := http.Get(base + "/scenario")
		if err != nil {
			continue
		}
		_ = resp.Body.Close()
		if m := exemplarRE.FindStringSubmatch(get("/metrics", "Accept", "application/openmetrics-text;version=1.0.0")); m != nil {
			traceID = m[1]
		}
	}
	require.NotEmpty(t, traceID, "no exemplar on /metrics")

	// The exemplar's trace_id leads to log lines in Ledgerlog.
	q := `{service=~".+"} |= "` + traceID + `"`
	var rows []string
	for time.Now().Before(deadline.Add(10 * time.Second)) {
		rows, _ = s.queryRange(q, time.Now().Add(-time.Minute).UnixNano(), time.Now().Add(time.Minute).UnixNano(), 100, "backward")
		if len(rows) > 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	require.NotEmpty(t, rows, "no log line with exemplar trace_id %s", traceID)
	require.Contains(t, rows[0], `"trace_id":"`+traceID+`"`)

	// Switch scenario at runtime.
	resp, err := http.Post(base+"/scenario?name=compliance-violation&duration=1m", "", nil)
	require.NoError(t, err)
	var st struct {
		Name  string `json:"name"`
		Base  string `json:"base"`
		Until string `json:"until"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	require.NoError(t, resp.Body.Close())
	require.Equal(t, "compliance-violation", st.Name)
	require.Equal(t, "normal", st.Base)
	require.NotEmpty(t, st.Until)
	require.Contains(t, get("/scenario"), `"name":"compliance-violation"`)
	for time.Now().Before(deadline.Add(20 * time.Second)) {
		rows, _ = s.queryRange(`{service=~".+"} |= "COMPLIANCE_VIOLATION"`, time.Now().Add(-time.Minute).UnixNano(), time.Now().Add(time.Minute).UnixNano(), 10, "backward")
		if len(rows) > 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	require.NotEmpty(t, rows, "compliance violations reach the server")

	// The webhook receiver takes Alertmanager notifications.
	body := `{"version":"4","status":"firing","receiver":"compliance-critical","alerts":[{"status":"firing","labels":{"alertname":"ComplianceViolation","severity":"critical","team":"compliance"},"annotations":{"summary":"Compliance violation detected"}}]}`
	resp, err = http.Post(base+"/webhook/compliance-critical", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, get("/webhook"), `"receiver":"compliance-critical"`)
	require.Contains(t, get("/"), "POST /scenario")
}

// TestDemoFilesThroughAgent ships the demo's files with deploy/promtail.yaml
// through the real agent into a real server: the streams are the ones a
// direct push makes.
func TestDemoFilesThroughAgent(t *testing.T) {
	s := startServer(t, tempDir(t))
	work := t.TempDir()
	logDir := filepath.Join(work, "logs")
	start := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	out := filepath.Join(work, "demo.ndjson")
	runDemo(t, "-log-dir", logDir, "-out", out, "-listen=", "-seed", "12", "-rate", "20",
		"-scenario", "error-spike", "-start", start.Format(time.RFC3339), "-duration", "1m")
	records := ndjsonRecords(t, out)
	wantStreams := map[string]int{}
	for _, r := range records {
		ls, err := model.ParseLabels(r.Labels)
		require.NoError(t, err)
		wantStreams[ls.String()]++
	}

	cfg, err := os.ReadFile("../../deploy/promtail.yaml")
	require.NoError(t, err)
	text := strings.ReplaceAll(string(cfg), "/tmp/ledgerlog-demo", work)
	text = strings.ReplaceAll(text, "http://127.0.0.1:3100", s.url)
	cfgPath := filepath.Join(work, "promtail.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(text), 0o644))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var agentLogs syncWriter
	agentLogs.w = &bytes.Buffer{}
	go func() {
		done <- RunAgent(ctx, []string{"-config.file", cfgPath, "-server.http-listen-port", strconv.Itoa(freePort(t))}, io.Discard, &agentLogs)
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("agent did not stop")
		}
	}()

	var res streamsResult
	var rows []string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		rows, res = s.queryRange(`{service=~".+"}`, start.UnixNano(), start.Add(2*time.Minute).UnixNano(), 5000, "forward")
		if len(rows) >= len(records) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	require.Len(t, rows, len(records), "agent logs:\n%s", agentLogs.w.(*bytes.Buffer).String())
	gotStreams := map[string]int{}
	for _, st := range res.Data.Result {
		// Stream labels only: the answer also carries structured metadata.
		ls := model.LabelsFromStrings("environment", st.Stream["environment"], "level", st.Stream["level"],
			"region", st.Stream["region"], "service", st.Stream["service"])
		gotStreams[ls.String()] += len(st.Values)
	}
	require.Equal(t, wantStreams, gotStreams)

	// The error-spike alert expression sees the shipped lines.
	rows2, err := s.instant(`sum(rate({service="payment-processor"} |= "ERROR" [5m])) / sum(rate({service="payment-processor"}[5m])) > 0.05`, start.Add(time.Minute))
	require.NoError(t, err)
	require.Len(t, rows2, 1)
}

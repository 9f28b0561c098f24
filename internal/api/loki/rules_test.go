package loki

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/ledgerlog/ledgerlog/internal/ruler"
	"github.com/ledgerlog/ledgerlog/internal/tenant"
)

// rulesServer serves the API with a real ruler over a temporary directory.
// Rule expressions are answered by q (the app wires the engine instead).
func rulesServer(t *testing.T, auth bool, q ruler.QueryFunc) (*httptest.Server, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := ruler.DefaultConfig()
	require.NoError(t, cfg.EvaluationInterval.Set("1s"))
	require.NoError(t, cfg.PollInterval.Set("1s"))
	if q == nil {
		q = func(context.Context, string, string, time.Time) (ruler.Vector, error) { return nil, nil }
	}
	m, err := ruler.New(ruler.Options{Config: cfg, RuleDir: filepath.Join(dir, "rules"), StateDir: filepath.Join(dir, "state"), Query: q})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	reg := prometheus.NewRegistry()
	a := New(Options{Tenants: tenant.Resolver{AuthEnabled: auth}, Gatherer: reg, Registerer: reg})
	a.SetRuler(m)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	return srv, filepath.Join(dir, "rules")
}

func call(t *testing.T, method, url, body string, headers ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b), resp.Header
}

const accepted = `{"status":"success","data":null,"errorType":"","error":""}`

const groupBody = `name: financial_alerts
rules:
  - alert: ComplianceViolation
    expr: |
      count_over_time({service=~".*"} |~ "COMPLIANCE_VIOLATION" [1h]) > 0
    for: 0s
    labels:
      severity: critical
      team: compliance
    annotations:
      summary: "Compliance violation detected"
      description: "Compliance violation found in logs"
  - record: ledgerlog:violations:count1h
    expr: sum(count_over_time({service=~".+"} |~ "COMPLIANCE_VIOLATION" [1h]))
`

func TestRulesAPIRoundTrip(t *testing.T) {
	srv, dir := rulesServer(t, false, nil)
	for _, base := range []string{"/loki/api/v1/rules", "/api/prom/rules"} {
		code, body, _ := call(t, "GET", srv.URL+base, "")
		require.Equal(t, http.StatusNotFound, code)
		require.Equal(t, "no rule groups found", body)
	}

	code, body, h := call(t, "POST", srv.URL+"/loki/api/v1/rules/compliance", groupBody, "Content-Type", "application/yaml")
	require.Equal(t, http.StatusAccepted, code, body)
	require.Equal(t, accepted, body)
	require.Equal(t, "application/json", h.Get("Content-Type"))
	_, err := os.Stat(filepath.Join(dir, "fake", "compliance.yaml"))
	require.NoError(t, err, "Loki's layout: <dir>/<tenant>/<namespace>.yaml")

	// A second namespace through the legacy prefix.
	code, body, _ = call(t, "POST", srv.URL+"/api/prom/rules/payments", "name: p\ninterval: 30s\nrules:\n- record: payments:lines\n  expr: sum(count_over_time({service=\"payments\"}[1m]))\n")
	require.Equal(t, http.StatusAccepted, code, body)

	code, body, h = call(t, "GET", srv.URL+"/loki/api/v1/rules", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "application/yaml", h.Get("Content-Type"))
	var all map[string][]ruler.RuleGroup
	require.NoError(t, yaml.Unmarshal([]byte(body), &all))
	require.Len(t, all, 2)
	require.Equal(t, "financial_alerts", all["compliance"][0].Name)
	require.Equal(t, map[string]string{"severity": "critical", "team": "compliance"}, all["compliance"][0].Rules[0].Labels)
	require.Equal(t, "p", all["payments"][0].Name)

	code, body, _ = call(t, "GET", srv.URL+"/loki/api/v1/rules/compliance", "")
	require.Equal(t, http.StatusOK, code)
	var one map[string][]ruler.RuleGroup
	require.NoError(t, yaml.Unmarshal([]byte(body), &one))
	require.Equal(t, []string{"compliance"}, keys(one))

	// The group comes back as it was posted (cortextool diffs on this).
	code, body, _ = call(t, "GET", srv.URL+"/loki/api/v1/rules/compliance/financial_alerts", "")
	require.Equal(t, http.StatusOK, code)
	posted, err := ruler.ParseGroup([]byte(groupBody), ruler.ValidationOptions{})
	require.NoError(t, err)
	got, err := ruler.ParseGroup([]byte(body), ruler.ValidationOptions{})
	require.NoError(t, err, body)
	wantY, _ := ruler.MarshalGroups(posted)
	gotY, _ := ruler.MarshalGroups(got)
	require.Equal(t, string(wantY), string(gotY))

	code, body, _ = call(t, "GET", srv.URL+"/loki/api/v1/rules/compliance/nope", "")
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "group does not exist", body)
	code, body, _ = call(t, "GET", srv.URL+"/loki/api/v1/rules/nope", "")
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "no rule groups found", body)

	// The ruler runs the posted groups; the Prometheus API shows them.
	poll(t, func() bool {
		code, body, _ := call(t, "GET", srv.URL+"/prometheus/api/v1/rules", "")
		return code == http.StatusOK && strings.Count(body, `"name":"`) >= 4 && strings.Contains(body, `"health":"ok"`)
	})

	// Delete a group, then a namespace.
	code, body, _ = call(t, "DELETE", srv.URL+"/loki/api/v1/rules/compliance/financial_alerts", "")
	require.Equal(t, http.StatusAccepted, code)
	require.Equal(t, accepted, body)
	code, body, _ = call(t, "DELETE", srv.URL+"/loki/api/v1/rules/compliance/financial_alerts", "")
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "group does not exist", body)
	code, _, _ = call(t, "DELETE", srv.URL+"/api/prom/rules/payments", "")
	require.Equal(t, http.StatusAccepted, code)
	code, body, _ = call(t, "DELETE", srv.URL+"/api/prom/rules/payments", "")
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "group namespace does not exist", body)
	code, body, _ = call(t, "GET", srv.URL+"/loki/api/v1/rules", "")
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "no rule groups found", body)
}

// poll waits for cond in the test goroutine (cond may use require).
func poll(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func keys(m map[string][]ruler.RuleGroup) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// An invalid group is refused with a 400 that says what is wrong, and
// nothing is saved.
func TestRulesAPIBadRules(t *testing.T) {
	srv, dir := rulesServer(t, false, nil)
	code, body, _ := call(t, "POST", srv.URL+"/loki/api/v1/rules/ns", groupBody)
	require.Equal(t, http.StatusAccepted, code, body)
	file := filepath.Join(dir, "fake", "ns.yaml")
	before, err := os.ReadFile(file)
	require.NoError(t, err)

	f := func(ns, in string, want ...string) {
		t.Helper()
		code, body, _ := call(t, "POST", srv.URL+"/loki/api/v1/rules/"+ns, in)
		require.Equal(t, http.StatusBadRequest, code, body)
		for _, w := range want {
			require.Contains(t, body, w)
		}
		after, err := os.ReadFile(file)
		require.NoError(t, err)
		require.Equal(t, string(before), string(after), "nothing saved")
		entries, err := os.ReadDir(filepath.Join(dir, "fake"))
		require.NoError(t, err)
		require.Len(t, entries, 1, "no other file written")
	}
	// LogQL parse error with the rule, the line and Loki's parser text.
	f("ns", "name: financial_alerts\nrules:\n- alert: HighErrorRate\n  expr: sum(rate({service=\"payment-processor\"} |= \"ERROR\" [5m]) > 0.05\n",
		`invalid rule group: line 4: group "financial_alerts": rule "HighErrorRate": parse error at line 1, col 63: syntax error: unexpected $end`)
	// A log query is not a rule expression.
	f("ns", "name: g\nrules:\n- alert: A\n  expr: '{app=\"x\"} |= \"y\"'\n", `rule "A": parse error : only sample expression supported`)
	// Several problems are all reported.
	f("ns", "name: g\nrules:\n- record: 'not valid'\n  expr: sum(count_over_time({a=\"b\"}[1m]))\n  for: 1m\n- expr: x\n",
		"invalid recording rule name: not valid", "invalid field 'for' in recording rule", "one of 'record' or 'alert' must be set")
	f("ns", "name: g\nrules:\n- alert: A\n  expr: sum(count_over_time({a=\"b\"}[1m])) > 1\n  annotations:\n    d: '{{ $value '\n", "template annotation d")
	f("ns", "name: g\nrules:\n- alert: A\n  expr: sum(count_over_time({a=\"b\"}[1m])) > 1\n  sevrity: high\n", "line 5: field sevrity not found")
	f("ns", "rules:\n- alert: A\n  expr: sum(count_over_time({a=\"b\"}[1m])) > 1\n", "groupname must not be empty")
	f("ns", "", "empty rule group")
	f("ns", "name: [", "invalid rule group: yaml:")
	f(".hidden", "name: g\nrules:\n- alert: A\n  expr: sum(count_over_time({a=\"b\"}[1m])) > 1\n", "must not start with '.'")
}

func TestRulesAPITenants(t *testing.T) {
	srv, dir := rulesServer(t, true, nil)
	code, body, _ := call(t, "GET", srv.URL+"/loki/api/v1/rules", "")
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, "no org id", body)
	code, body, _ = call(t, "POST", srv.URL+"/loki/api/v1/rules/ns", groupBody, "X-Scope-OrgID", "team-a")
	require.Equal(t, http.StatusAccepted, code, body)
	_, err := os.Stat(filepath.Join(dir, "team-a", "ns.yaml"))
	require.NoError(t, err)
	code, _, _ = call(t, "GET", srv.URL+"/loki/api/v1/rules", "", "X-Scope-OrgID", "team-b")
	require.Equal(t, http.StatusNotFound, code)
	code, body, _ = call(t, "GET", srv.URL+"/loki/api/v1/rules", "", "X-Scope-OrgID", "a|b")
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, "multiple org IDs present", body)
}

func TestRulesAPINotReadyAndDisabled(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := New(Options{Gatherer: reg, Registerer: reg})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	code, _, _ := call(t, "GET", srv.URL+"/prometheus/api/v1/rules", "")
	require.Equal(t, http.StatusServiceUnavailable, code)
	a.SetRuler(nil)
	code, _, _ = call(t, "GET", srv.URL+"/loki/api/v1/rules", "")
	require.Equal(t, http.StatusNotFound, code)
}

// The Prometheus-format rules and alerts APIs, in the shapes Grafana reads.
func TestPrometheusRulesAndAlertsJSON(t *testing.T) {
	q := func(_ context.Context, _, query string, _ time.Time) (ruler.Vector, error) {
		if strings.Contains(query, "COMPLIANCE_VIOLATION") && strings.Contains(query, "> 0") {
			return ruler.Vector{{Labels: labels.FromStrings("service", "ledger"), Value: 2}}, nil
		}
		return ruler.Vector{{Labels: labels.EmptyLabels(), Value: 2}}, nil
	}
	srv, _ := rulesServer(t, false, q)
	code, body, _ := call(t, "POST", srv.URL+"/loki/api/v1/rules/compliance", groupBody)
	require.Equal(t, http.StatusAccepted, code, body)

	type alert struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		State       string            `json:"state"`
		ActiveAt    *time.Time        `json:"activeAt"`
		Value       string            `json:"value"`
	}
	var rules struct {
		Status string `json:"status"`
		Data   struct {
			Groups []struct {
				Name           string           `json:"name"`
				File           string           `json:"file"`
				Interval       float64          `json:"interval"`
				LastEvaluation time.Time        `json:"lastEvaluation"`
				EvaluationTime *float64         `json:"evaluationTime"`
				Rules          []map[string]any `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	poll(t, func() bool {
		_, body, _ := call(t, "GET", srv.URL+"/prometheus/api/v1/rules", "")
		require.NoError(t, json.Unmarshal([]byte(body), &rules))
		return len(rules.Data.Groups) == 1 && rules.Data.Groups[0].Rules[0]["state"] == "firing"
	})
	g := rules.Data.Groups[0]
	require.Equal(t, "success", rules.Status)
	require.Equal(t, "financial_alerts", g.Name)
	require.Equal(t, "compliance", g.File)
	require.Equal(t, 1.0, g.Interval)
	require.NotNil(t, g.EvaluationTime)
	ar := g.Rules[0]
	require.Equal(t, "alerting", ar["type"])
	require.Equal(t, "ComplianceViolation", ar["name"])
	require.Equal(t, `count_over_time({service=~".*"} |~ "COMPLIANCE_VIOLATION" [1h]) > 0`, ar["query"])
	require.Equal(t, 0.0, ar["duration"])
	require.Equal(t, "ok", ar["health"])
	require.Equal(t, map[string]any{"severity": "critical", "team": "compliance"}, ar["labels"])
	alerts := ar["alerts"].([]any)
	require.Len(t, alerts, 1)
	a0 := alerts[0].(map[string]any)
	require.Equal(t, "firing", a0["state"])
	require.Equal(t, "2e+00", a0["value"])
	require.Equal(t, "ledger", a0["labels"].(map[string]any)["service"])
	rr := g.Rules[1]
	require.Equal(t, "recording", rr["type"])
	require.Equal(t, "ledgerlog:violations:count1h", rr["name"])
	require.NotContains(t, rr, "alerts")

	// Filters.
	_, body, _ = call(t, "GET", srv.URL+"/prometheus/api/v1/rules?type=record", "")
	require.NotContains(t, body, `"alerting"`)
	require.Contains(t, body, `"recording"`)
	_, body, _ = call(t, "GET", srv.URL+"/prometheus/api/v1/rules?rule_name[]=nope", "")
	require.JSONEq(t, `{"status":"success","data":{"groups":[]}}`, body)
	code, _, _ = call(t, "GET", srv.URL+"/prometheus/api/v1/rules?type=bad", "")
	require.Equal(t, http.StatusBadRequest, code)

	var alertsResp struct {
		Status string `json:"status"`
		Data   struct {
			Alerts []alert `json:"alerts"`
		} `json:"data"`
	}
	code, body, _ = call(t, "GET", srv.URL+"/api/prom/api/v1/alerts", "")
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, json.Unmarshal([]byte(body), &alertsResp))
	require.Len(t, alertsResp.Data.Alerts, 1)
	al := alertsResp.Data.Alerts[0]
	require.Equal(t, "ComplianceViolation", al.Labels["alertname"])
	require.Equal(t, "Compliance violation found in logs", al.Annotations["description"])
	require.NotNil(t, al.ActiveAt)
}

package ruler

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

const seedPath = "../../../shared/seed/000_b2d92a57afe88c1c.txt"

// The financial_alerts group of the product brief loads exactly as written.
func TestSeedFinancialAlertsLoadVerbatim(t *testing.T) {
	b, err := os.ReadFile("testdata/financial_alerts.yaml")
	require.NoError(t, err)
	if seed, err := os.ReadFile(seedPath); err == nil {
		require.Contains(t, string(seed), "```yaml\n"+string(b)+"```", "testdata must be the seed's rule block byte for byte")
	}
	rgs, err := ParseFile("financial_alerts.yaml", b, ValidationOptions{})
	require.NoError(t, err)
	require.Len(t, rgs.Groups, 1)
	g := rgs.Groups[0]
	require.Equal(t, "financial_alerts", g.Name)
	require.Len(t, g.Rules, 3)

	names := []string{g.Rules[0].Alert, g.Rules[1].Alert, g.Rules[2].Alert}
	require.Equal(t, []string{"HighErrorRate", "SuspiciousTransactionPattern", "ComplianceViolation"}, names)
	require.Equal(t, model.Duration(2*time.Minute), g.Rules[0].For)
	require.Equal(t, model.Duration(30*time.Second), g.Rules[1].For)
	require.Equal(t, model.Duration(0), g.Rules[2].For)
	require.Equal(t, map[string]string{"severity": "critical", "team": "compliance"}, g.Rules[2].Labels)
	require.Equal(t, "Compliance violation detected", g.Rules[2].Annotations["summary"])
	require.Equal(t, "Error rate is {{ $value }} for payment processor", g.Rules[0].Annotations["description"])
	require.Contains(t, g.Rules[2].Expr, `count_over_time({service=~".*"} |~ "COMPLIANCE_VIOLATION" [1h]) > 0`)

	// With require_selective_matcher the catch-all selector is refused, at
	// the line of the expression.
	_, err = ParseFile("financial_alerts.yaml", b, ValidationOptions{StrictSelectors: true})
	require.Error(t, err)
	require.Contains(t, err.Error(), `financial_alerts.yaml:32: group "financial_alerts": rule "ComplianceViolation": parse error : queries require at least one regexp or equality matcher`)
}

func TestParseFileErrors(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		_, err := ParseFile("r.yaml", []byte(in), ValidationOptions{})
		require.Error(t, err, in)
		require.Contains(t, err.Error(), want)
	}
	f("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(rate({app=\"a\"}[1m]) > 1\n",
		`r.yaml:5: group "g": rule "A": parse error at line 1, col 28: syntax error: unexpected $end`)
	f("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: |\n      sum(\n        rate({app=\"a\"} |= \"x\" [1m])\n      ) by (\n",
		`r.yaml:8: group "g": rule "A": parse error at line 3`)
	f("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: '{app=\"a\"}'\n", `r.yaml:5: group "g": rule "A": parse error : only sample expression supported`)
	f("groups:\n- name: g\n  rules:\n  - record: 'bad name'\n    expr: count_over_time({app=\"a\"}[1m])\n", `r.yaml:4: group "g": rule "bad name": invalid recording rule name: bad name`)
	f("groups:\n- name: g\n  rules:\n  - record: r\n    for: 1m\n    expr: count_over_time({app=\"a\"}[1m])\n", "invalid field 'for' in recording rule")
	f("groups:\n- name: g\n  rules:\n  - expr: count_over_time({app=\"a\"}[1m])\n", "r.yaml:4: group \"g\": one of 'record' or 'alert' must be set")
	f("groups:\n- name: g\n  rules:\n  - alert: A\n    record: b\n    expr: count_over_time({app=\"a\"}[1m])\n", "only one of 'record' and 'alert' must be set")
	f("groups:\n- name: g\n  rules:\n  - alert: A\n", "field 'expr' must be set in rule")
	f("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: count_over_time({app=\"a\"}[1m])\n    labels:\n      'a-b': x\n", "invalid label name: a-b")
	f("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: count_over_time({app=\"a\"}[1m])\n    annotations:\n      d: '{{ $value '\n", "template annotation d")
	f("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: count_over_time({app=\"a\"}[1m])\n    severity: high\n", "r.yaml:6: field severity not found")
	f("groups:\n- name: g\n  rules: []\n", `r.yaml:2: group "g": group has no rules`)
	f("groups:\n- rules:\n  - alert: A\n    expr: count_over_time({app=\"a\"}[1m])\n", "groupname must not be empty")
	f("groups:\n- name: g\n  interval: 5x\n  rules: []\n", "r.yaml")
	f("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: count_over_time({app=\"a\"}[1m])\n- name: g\n  rules:\n  - alert: A\n    expr: count_over_time({app=\"a\"}[1m])\n", `r.yaml:6: group "g": groupname is repeated in the same file`)
	f("groups: [", "r.yaml: yaml:")
}

func TestParseGroupRoundTrip(t *testing.T) {
	in := `name: payments
interval: 30s
limit: 10
rules:
    - record: ledgerlog:errors:rate1m
      expr: sum by (service) (rate({service="payment-processor"} |= "ERROR" [1m]))
      labels:
        source: ledgerlog
    - alert: PaymentErrors
      expr: ledgerlog_dummy_is_not_logql > 1
      for: 5m
`
	_, err := ParseGroup([]byte(in), ValidationOptions{})
	require.ErrorContains(t, err, `line 10: group "payments": rule "PaymentErrors": parse error`)

	in = strings.Replace(in, "ledgerlog_dummy_is_not_logql > 1", `sum(count_over_time({service="payment-processor"} |= "declined" [5m])) > 3`, 1)
	g, err := ParseGroup([]byte(in), ValidationOptions{})
	require.NoError(t, err)
	require.Equal(t, model.Duration(30*time.Second), g.Interval)
	require.Equal(t, 10, g.Limit)
	out, err := MarshalGroups(g)
	require.NoError(t, err)
	g2, err := ParseGroup(out, ValidationOptions{})
	require.NoError(t, err)
	require.Equal(t, stripPositions(g), stripPositions(g2))
}

func stripPositions(g RuleGroup) RuleGroup {
	g.line = 0
	rules := make([]Rule, len(g.Rules))
	for i, r := range g.Rules {
		r.line, r.exprLine = 0, 0
		rules[i] = r
	}
	g.Rules = rules
	return g
}

// FuzzParseGroup: the rule parser never panics, and what it accepts
// survives a marshal/parse round trip.
func FuzzParseGroup(f *testing.F) {
	if b, err := os.ReadFile("testdata/financial_alerts.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("name: g\nrules:\n- alert: A\n  expr: count_over_time({a=\"b\"}[1m]) > 0\n  for: 1m\n  labels: {x: '{{ $labels.a }}'}\n"))
	f.Add([]byte("name: g\nrules:\n- record: r\n  expr: sum(rate({a=\"b\"} |= \"x\" [5m]))\n"))
	f.Add([]byte("groups: [{name: x}]"))
	f.Add([]byte("name: g\ninterval: 1d\nlimit: -1\nrules: [{alert: B, expr: '1'}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := ParseGroup(b, ValidationOptions{})
		if err != nil {
			return
		}
		out, err := MarshalGroups(g)
		require.NoError(t, err)
		g2, err := ParseGroup(out, ValidationOptions{})
		require.NoError(t, err, "re-parse of\n%s", out)
		require.Equal(t, stripPositions(g), stripPositions(g2))
	})
}

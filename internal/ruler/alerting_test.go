package ruler

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

const errExpr = `sum by (service) (rate({service="payment-processor"} |= "ERROR" [5m])) > 0.05`

func alertRule(forD, keep time.Duration) *alertingRule {
	return newAlertingRule(Rule{
		Alert:         "HighErrorRate",
		Expr:          errExpr,
		For:           model.Duration(forD),
		KeepFiringFor: model.Duration(keep),
		Labels:        map[string]string{"severity": "critical", "team": "fintech", "where": "{{ $labels.service }}"},
		Annotations:   map[string]string{"description": "Error rate is {{ $value }} for {{ $labels.service }}", "summary": "High error rate"},
	})
}

func TestAlertLifecycle(t *testing.T) {
	q := newScripted()
	ec := evalContext{tenant: "fake", query: q.query}
	r := alertRule(2*time.Minute, 0)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	const resend, interval = time.Minute, 30 * time.Second

	// Inactive while the query is empty.
	_, err := r.eval(ctx, t0, ec)
	require.NoError(t, err)
	require.Equal(t, StateInactive, r.state())

	// Pending from the first sample; nothing is sent while pending.
	q.set(errExpr, Vector{sample(0.25, "__name__", "x", "service", "payment-processor")})
	vec, err := r.eval(ctx, t0.Add(time.Minute), ec)
	require.NoError(t, err)
	require.Equal(t, StatePending, r.state())
	require.Empty(t, r.toSend(t0.Add(time.Minute), resend, interval))
	require.Len(t, vec, 2, "ALERTS and ALERTS_FOR_STATE")
	require.Equal(t, "ALERTS", vec[0].Labels.Get("__name__"))
	require.Equal(t, "pending", vec[0].Labels.Get("alertstate"))
	require.Equal(t, float64(t0.Add(time.Minute).Unix()), vec[1].Value)

	a := r.alerts()[0]
	require.Equal(t, labels.FromStrings("alertname", "HighErrorRate", "service", "payment-processor", "severity", "critical", "team", "fintech", "where", "payment-processor"), a.Labels)
	require.Equal(t, "Error rate is 0.25 for payment-processor", a.Annotations.Get("description"))
	activeAt := a.ActiveAt

	// Still pending one minute in; firing once `for` has elapsed.
	_, err = r.eval(ctx, t0.Add(2*time.Minute), ec)
	require.NoError(t, err)
	require.Equal(t, StatePending, r.state())
	fireAt := t0.Add(3 * time.Minute)
	q.set(errExpr, Vector{sample(0.5, "service", "payment-processor")})
	_, err = r.eval(ctx, fireAt, ec)
	require.NoError(t, err)
	require.Equal(t, StateFiring, r.state())
	sent := r.toSend(fireAt, resend, interval)
	require.Len(t, sent, 1)
	require.Equal(t, activeAt, sent[0].ActiveAt)
	require.Equal(t, fireAt, sent[0].FiredAt)
	require.Equal(t, fireAt.Add(4*resend), sent[0].ValidUntil)
	require.Equal(t, "Error rate is 0.5 for payment-processor", sent[0].Annotations.Get("description"))

	// Not re-sent before the resend delay, re-sent after it.
	_, _ = r.eval(ctx, fireAt.Add(30*time.Second), ec)
	require.Empty(t, r.toSend(fireAt.Add(30*time.Second), resend, interval))
	_, _ = r.eval(ctx, fireAt.Add(61*time.Second), ec)
	require.Len(t, r.toSend(fireAt.Add(61*time.Second), resend, interval), 1)

	// Resolved when the sample goes; the resolution is sent at once.
	resolveAt := fireAt.Add(2 * time.Minute)
	q.set(errExpr, nil)
	vec, err = r.eval(ctx, resolveAt, ec)
	require.NoError(t, err)
	require.Empty(t, vec)
	require.Equal(t, StateInactive, r.state())
	sent = r.toSend(resolveAt, resend, interval)
	require.Len(t, sent, 1)
	require.Equal(t, resolveAt, sent[0].ResolvedAt)

	// Kept for the retention, then forgotten.
	_, _ = r.eval(ctx, resolveAt.Add(10*time.Minute), ec)
	require.Len(t, r.alerts(), 1)
	_, _ = r.eval(ctx, resolveAt.Add(16*time.Minute), ec)
	require.Empty(t, r.alerts())
}

func TestAlertForZeroFiresAtOnce(t *testing.T) {
	q := newScripted()
	q.set(errExpr, Vector{sample(1, "service", "a")})
	r := alertRule(0, 0)
	ts := time.Unix(1000, 0)
	_, err := r.eval(context.Background(), ts, evalContext{query: q.query})
	require.NoError(t, err)
	require.Equal(t, StateFiring, r.state())
	require.Len(t, r.toSend(ts, time.Minute, time.Minute), 1)
}

func TestPendingAlertThatGoesAwayIsNeverSent(t *testing.T) {
	q := newScripted()
	q.set(errExpr, Vector{sample(1, "service", "a")})
	r := alertRule(time.Minute, 0)
	ec := evalContext{query: q.query}
	ts := time.Unix(1000, 0)
	_, _ = r.eval(context.Background(), ts, ec)
	q.set(errExpr, nil)
	_, _ = r.eval(context.Background(), ts.Add(30*time.Second), ec)
	require.Empty(t, r.alerts())
	require.Empty(t, r.toSend(ts.Add(30*time.Second), 0, time.Second))
}

func TestKeepFiringFor(t *testing.T) {
	q := newScripted()
	q.set(errExpr, Vector{sample(1, "service", "a")})
	r := alertRule(0, 2*time.Minute)
	ec := evalContext{query: q.query}
	ts := time.Unix(10000, 0)
	_, _ = r.eval(context.Background(), ts, ec)
	require.Equal(t, StateFiring, r.state())
	q.set(errExpr, nil)
	_, _ = r.eval(context.Background(), ts.Add(time.Minute), ec)
	require.Equal(t, StateFiring, r.state())
	require.Equal(t, ts.Add(time.Minute), r.alerts()[0].KeepFiringSince)
	_, _ = r.eval(context.Background(), ts.Add(2*time.Minute), ec)
	require.Equal(t, StateFiring, r.state())
	_, _ = r.eval(context.Background(), ts.Add(3*time.Minute), ec)
	require.Equal(t, StateInactive, r.state())
	require.Equal(t, ts.Add(3*time.Minute), r.alerts()[0].ResolvedAt)
}

func TestAlertLimitAndDuplicates(t *testing.T) {
	q := newScripted()
	q.set(errExpr, Vector{sample(1, "service", "a"), sample(2, "service", "b")})
	r := alertRule(0, 0)
	_, err := r.eval(context.Background(), time.Unix(1, 0), evalContext{query: q.query, limit: 1})
	require.EqualError(t, err, "exceeded limit of 1 with 2 alerts")
	require.Empty(t, r.alerts())

	// The rule's label overrides the only label that told them apart.
	dup := newAlertingRule(Rule{Alert: "A", Expr: errExpr, Labels: map[string]string{"service": "x"}})
	_, err = dup.eval(context.Background(), time.Unix(1, 0), evalContext{query: q.query})
	require.ErrorIs(t, err, errDuplicateLabelset)

	q.fail(errExpr, errors.New("engine down"))
	_, err = r.eval(context.Background(), time.Unix(2, 0), evalContext{query: q.query})
	require.EqualError(t, err, "engine down")
	st := ruleStatus(r)
	require.Equal(t, "err", st.Health)
	require.Equal(t, "engine down", st.LastError)
}

func TestRecordingRule(t *testing.T) {
	q := newScripted()
	const expr = `sum by (service) (count_over_time({service=~".+"}[1m]))`
	q.set(expr, Vector{sample(3, "service", "a"), sample(4, "service", "b")})
	r := newRecordingRule(Rule{Record: "service:lines:count1m", Expr: expr, Labels: map[string]string{"source": "ledgerlog"}})
	vec, err := r.eval(context.Background(), time.Unix(5, 0), evalContext{query: q.query})
	require.NoError(t, err)
	require.Equal(t, Vector{
		{Labels: labels.FromStrings("__name__", "service:lines:count1m", "service", "a", "source", "ledgerlog"), Value: 3},
		{Labels: labels.FromStrings("__name__", "service:lines:count1m", "service", "b", "source", "ledgerlog"), Value: 4},
	}, vec)
	_, err = r.eval(context.Background(), time.Unix(5, 0), evalContext{query: q.query, limit: 1})
	require.EqualError(t, err, "exceeded limit of 1 with 2 series")
}

func TestTemplates(t *testing.T) {
	f := func(text string, value float64, want string) {
		t.Helper()
		got := expandTemplate("t", text, templateData{
			Labels:         map[string]string{"service": "payments", "instance": "host-1.example.com:9100"},
			ExternalLabels: map[string]string{"cluster": "eu-1"},
			ExternalURL:    "http://ledgerlog:3100",
			Value:          value,
		}, func(q string) (Vector, error) {
			return Vector{sample(7, "service", "b"), sample(9, "service", "a")}, nil
		})
		require.Equal(t, want, got)
	}
	f("Error rate is {{ $value }} for payment processor", 0.0625, "Error rate is 0.0625 for payment processor")
	f("{{ $labels.service }} on {{ $externalLabels.cluster }} ({{ $externalURL }})", 0, "payments on eu-1 (http://ledgerlog:3100)")
	f("{{ $value | humanize }}", 1234567, "1.235M")
	f("{{ $value | humanize }}", 0.00123, "1.23m")
	f("{{ $value | humanize1024 }}", 2048, "2ki")
	f("{{ $value | humanizePercentage }}", 0.0712, "7.12%")
	f("{{ $value | humanizeDuration }}", 90061, "1d 1h 1m 1s")
	f("{{ $value | humanizeDuration }}", 0.25, "250ms")
	f("{{ $labels.instance | stripPort }}", 0, "host-1.example.com")
	f("{{ $labels.service | toUpper }} {{ title \"high error rate\" }}", 0, "PAYMENTS High Error Rate")
	f(`{{ reReplaceAll "(.*)s$" "$1" $labels.service }}`, 0, "payment")
	f(`{{ if match "^pay" $labels.service }}yes{{ end }}`, 0, "yes")
	f(`{{ range query "x" | sortByLabel "service" }}{{ label "service" . }}={{ value . }} {{ end }}`, 0, "a=9 b=7 ")
	f(`{{ with query "x" }}{{ . | first | value }}{{ end }}`, 0, "7")
	f("{{ $labels.missing }}", 0, "")
	f("{{ $value | humanize", 0, `<error expanding template: template: t:1: unclosed action>`)
	f("no template", 0, "no template")
}

package ruler

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// amRecorder is an HTTP endpoint that speaks Alertmanager's POST
// /api/v2/alerts: it fails the first `failures` requests with 503 and
// records the alerts of the others. The real Alertmanager is exercised by
// the application's integration test.
type amRecorder struct {
	mu       sync.Mutex
	failures int
	attempts int
	paths    []string
	auth     []string
	alerts   []amAlert
}

func (a *amRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.attempts++
	a.paths = append(a.paths, r.Method+" "+r.URL.Path)
	a.auth = append(a.auth, r.Header.Get("Authorization"))
	if a.failures > 0 {
		a.failures--
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	b, _ := io.ReadAll(r.Body)
	var batch []amAlert
	if err := json.Unmarshal(b, &batch); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	a.alerts = append(a.alerts, batch...)
	w.WriteHeader(http.StatusOK)
}

func (a *amRecorder) received() []amAlert {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]amAlert(nil), a.alerts...)
}

func TestNotificationsToAlertmanagers(t *testing.T) {
	up := &amRecorder{}
	down := &amRecorder{failures: 3}
	s1 := httptest.NewServer(up)
	defer s1.Close()
	s2 := httptest.NewServer(down)
	defer s2.Close()

	q := newScripted()
	q.set(`sum by (service) (count_over_time({service=~".+"} |= "COMPLIANCE_VIOLATION" [1h])) > 0`, Vector{sample(2, "service", "ledger")})
	m, dir := testManager(t, q.query, func(c *Config) {
		c.AlertmanagerURL = "http://user:pw@" + s1.Listener.Addr().String() + "/alertmanager/, " + s2.URL
		c.ExternalLabels = map[string]string{"cluster": "eu-1", "severity": "never-overrides"}
	})
	m.notifier.minBackoff, m.notifier.maxBackoff = 10*time.Millisecond, 40*time.Millisecond
	writeRules(t, dir, "fake", "compliance", `groups:
  - name: compliance
    interval: 1s
    rules:
      - alert: ComplianceViolation
        expr: sum by (service) (count_over_time({service=~".+"} |= "COMPLIANCE_VIOLATION" [1h])) > 0
        labels:
          severity: critical
        annotations:
          summary: "{{ $value }} violations in {{ $labels.service }}"
`)
	running(t, m)
	waitFor(t, "alert at the healthy alertmanager", func() bool { return len(up.received()) > 0 })
	waitFor(t, "alert at the recovered alertmanager", func() bool { return len(down.received()) > 0 })

	got := up.received()[0]
	require.Equal(t, map[string]string{"alertname": "ComplianceViolation", "service": "ledger", "severity": "critical", "cluster": "eu-1"}, got.Labels)
	require.Equal(t, map[string]string{"summary": "2 violations in ledger"}, got.Annotations)
	require.Equal(t, `http://ledgerlog.example:3100/loki/api/v1/query?query=sum+by+%28service%29+%28count_over_time%28%7Bservice%3D~%22.%2B%22%7D+%7C%3D+%22COMPLIANCE_VIOLATION%22+%5B1h%5D%29%29+%3E+0`, got.GeneratorURL)
	starts, err := time.Parse(time.RFC3339Nano, got.StartsAt)
	require.NoError(t, err)
	ends, err := time.Parse(time.RFC3339Nano, got.EndsAt)
	require.NoError(t, err)
	require.Equal(t, 4*time.Minute, ends.Sub(starts), "valid for 4 resend delays")

	up.mu.Lock()
	require.Equal(t, "POST /alertmanager/api/v2/alerts", up.paths[0])
	require.Equal(t, "Basic dXNlcjpwdw==", up.auth[0])
	up.mu.Unlock()
	down.mu.Lock()
	require.GreaterOrEqual(t, down.attempts, 4, "retried after 503s")
	down.mu.Unlock()
	require.GreaterOrEqual(t, testutil.ToFloat64(m.metrics.notificationErrors.WithLabelValues(s2.URL)), 3.0)
	require.GreaterOrEqual(t, testutil.ToFloat64(m.metrics.notificationsSent.WithLabelValues(s2.URL)), 1.0)

	// Resolution: endsAt is the resolve time, sent at once.
	q.set(`sum by (service) (count_over_time({service=~".+"} |= "COMPLIANCE_VIOLATION" [1h])) > 0`, nil)
	waitFor(t, "resolution", func() bool {
		for _, a := range up.received() {
			if e, _ := time.Parse(time.RFC3339Nano, a.EndsAt); !e.IsZero() && e.Sub(starts) < time.Minute {
				return true
			}
		}
		return false
	})
}

func TestBackoff(t *testing.T) {
	f := func(attempt int, want time.Duration) {
		t.Helper()
		require.Equal(t, want, backoff(time.Second, 30*time.Second, attempt))
	}
	f(1, time.Second)
	f(2, 2*time.Second)
	f(5, 16*time.Second)
	f(6, 30*time.Second)
	f(60, 30*time.Second)
}

// A full queue drops the oldest alerts and counts them.
func TestNotifierQueueBound(t *testing.T) {
	m, _ := testManager(t, newScripted().query, func(c *Config) {
		c.AlertmanagerURL = "http://127.0.0.1:1"
		c.NotificationQueueCapacity = 3
	})
	n := m.notifier
	for i := range 5 {
		n.send([]amAlert{{Labels: map[string]string{"i": string(rune('a' + i))}}})
	}
	require.Len(t, n.ams[0].queue, 3)
	require.Equal(t, "c", n.ams[0].queue[0].Labels["i"])
	require.Equal(t, 2.0, testutil.ToFloat64(m.metrics.notificationsDropped))
	// Shutdown with an unreachable Alertmanager gives up at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n.run(ctx)
}

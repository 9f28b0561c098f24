package ruler

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const pendingRules = `groups:
  - name: slow
    interval: 1s
    rules:
      - alert: SlowBurn
        expr: sum(count_over_time({service="ledger"} |= "retry" [10m])) > 0
        for: 10m
        labels:
          severity: warning
        annotations:
          summary: "{{ $value }} retries"
`

const slowExpr = `sum(count_over_time({service="ledger"} |= "retry" [10m])) > 0`

// running runs m until the returned stop is called.
func running(t *testing.T, m *Manager) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Fatal("manager did not stop")
		}
	}
	t.Cleanup(stop)
	return stop
}

func writeRules(t *testing.T, dir, tenantID, ns, content string) string {
	t.Helper()
	p := filepath.Join(dir, "rules", tenantID, ns+".yaml")
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func alertsOf(m *Manager) []Alert { return m.Alerts("fake") }

// A pending `for: 10m` alert keeps its activeAt when the ruler restarts,
// and starts over after an outage longer than for_outage_tolerance.
func TestRestartKeepsPendingActiveAt(t *testing.T) {
	q := newScripted()
	q.set(slowExpr, Vector{sample(3)})
	m, dir := testManager(t, q.query, nil)
	writeRules(t, dir, "fake", "ledger", pendingRules)
	stop := running(t, m)
	waitFor(t, "pending alert", func() bool { return len(alertsOf(m)) == 1 })
	before := alertsOf(m)[0]
	require.Equal(t, StatePending, before.State)
	stop()

	statePath := filepath.Join(dir, "rules-temp", "fake", "ledger", "slow.json")
	b, err := os.ReadFile(statePath)
	require.NoError(t, err)
	require.Contains(t, string(b), `"state": "pending"`)

	// Restart: a new manager over the same directories.
	restart := time.Now()
	m2, err := New(Options{Config: m.cfg, RuleDir: filepath.Join(dir, "rules"), StateDir: filepath.Join(dir, "rules-temp"), Query: q.query})
	require.NoError(t, err)
	stop2 := running(t, m2)
	waitFor(t, "evaluation after restart", func() bool {
		gs := m2.Groups("fake")
		return len(gs) == 1 && gs[0].LastEvaluation.After(restart)
	})
	after := alertsOf(m2)
	require.Len(t, after, 1)
	require.Equal(t, StatePending, after[0].State)
	require.True(t, before.ActiveAt.Equal(after[0].ActiveAt), "activeAt %s became %s", before.ActiveAt, after[0].ActiveAt)
	stop2()

	// After an outage beyond the tolerance, `for` starts over.
	cfg := m.cfg
	cfg.ForOutageTolerance = 1
	restart = time.Now()
	m3, err := New(Options{Config: cfg, RuleDir: filepath.Join(dir, "rules"), StateDir: filepath.Join(dir, "rules-temp"), Query: q.query})
	require.NoError(t, err)
	running(t, m3)
	waitFor(t, "evaluation after long outage", func() bool {
		gs := m3.Groups("fake")
		return len(gs) == 1 && gs[0].LastEvaluation.After(restart)
	})
	require.True(t, alertsOf(m3)[0].ActiveAt.After(before.ActiveAt))
}

// A firing alert restored after a restart stays firing; one that the
// grace period applies to cannot fire before it ends.
func TestRestoreGracePeriod(t *testing.T) {
	q := newScripted()
	m, _ := testManager(t, q.query, nil)
	g := newGroup(m, "fake", "ns", mustGroup(t, "name: g\nrules:\n- alert: A\n  expr: 'sum(count_over_time({a=\"b\"}[1m])) > 0'\n  for: 10m\n"))
	ar := g.rules[0].(*alertingRule)
	restart := time.Unix(100000, 0)
	a := Alert{State: StatePending, Labels: mustLabels("alertname", "A"), ActiveAt: restart.Add(-9 * time.Minute)}
	ar.restore([]Alert{a}, restart, 5*time.Minute)
	require.Equal(t, restart.Add(5*time.Minute), ar.alerts()[0].holdUntil)
	q.set(`sum(count_over_time({a="b"}[1m])) > 0`, Vector{sample(1)})
	ec := evalContext{query: q.query}
	_, _ = ar.eval(context.Background(), restart.Add(2*time.Minute), ec)
	require.Equal(t, StatePending, ar.state(), "held by the grace period")
	_, _ = ar.eval(context.Background(), restart.Add(5*time.Minute), ec)
	require.Equal(t, StateFiring, ar.state())
	require.Equal(t, restart.Add(-9*time.Minute), ar.alerts()[0].ActiveAt)
}

func TestManagerReloadsRuleFiles(t *testing.T) {
	q := newScripted()
	m, dir := testManager(t, q.query, nil)
	p := writeRules(t, dir, "tenant-a", "ns1", pendingRules)
	running(t, m)
	waitFor(t, "group loaded", func() bool { return len(m.Groups("tenant-a")) == 1 })
	require.Empty(t, m.Groups("fake"))

	// A second group in the file is picked up at the next poll.
	require.NoError(t, os.WriteFile(p, []byte(pendingRules+`  - name: second
    rules:
      - record: ledger:retries:count10m
        expr: sum(count_over_time({service="ledger"} |= "retry" [10m]))
`), 0o644))
	waitFor(t, "second group", func() bool { return len(m.Groups("tenant-a")) == 2 })

	// An invalid file is reported and its previous groups keep running.
	require.NoError(t, os.WriteFile(p, []byte("groups:\n  - name: slow\n    rules:\n      - alert: X\n        expr: sum(rate({service=\"ledger\"}[1m])\n"), 0o644))
	waitFor(t, "load error", func() bool { return m.LoadErrors("tenant-a") != nil })
	require.Contains(t, m.LoadErrors("tenant-a").Error(), p+":5:")
	require.Len(t, m.Groups("tenant-a"), 2)

	// Removing the file stops its groups.
	require.NoError(t, os.Remove(p))
	waitFor(t, "groups removed", func() bool { return len(m.Groups("tenant-a")) == 0 })
}

func TestStoreAPI(t *testing.T) {
	q := newScripted()
	m, dir := testManager(t, q.query, nil)
	running(t, m)

	_, err := m.ListRuleGroups("fake")
	require.ErrorIs(t, err, ErrNoRuleGroups)
	_, err = m.GetRuleGroup("fake", "ns", "g")
	require.ErrorIs(t, err, ErrGroupNotFound)

	g := mustGroup(t, "name: g1\ninterval: 1s\nrules:\n- record: r:lines\n  expr: sum(count_over_time({a=\"b\"}[1m]))\n")
	require.NoError(t, m.SetRuleGroup("fake", "payments", g))
	b, err := os.ReadFile(filepath.Join(dir, "rules", "fake", "payments.yaml"))
	require.NoError(t, err)
	require.Contains(t, string(b), "groups:\n    - name: g1\n")
	waitFor(t, "group from the API running", func() bool { return len(m.Groups("fake")) == 1 })

	g2 := mustGroup(t, "name: g2\nrules:\n- alert: A\n  expr: sum(count_over_time({a=\"b\"}[1m])) > 1\n")
	require.NoError(t, m.SetRuleGroup("fake", "payments", g2))
	// Replacing a group keeps its position.
	g.Limit = 5
	require.NoError(t, m.SetRuleGroup("fake", "payments", g))
	all, err := m.ListRuleGroups("fake")
	require.NoError(t, err)
	require.Len(t, all["payments"], 2)
	require.Equal(t, "g1", all["payments"][0].Name)
	require.Equal(t, 5, all["payments"][0].Limit)

	got, err := m.GetRuleGroup("fake", "payments", "g2")
	require.NoError(t, err)
	require.Equal(t, "A", got.Rules[0].Alert)

	require.ErrorIs(t, m.DeleteRuleGroup("fake", "payments", "nope"), ErrGroupNotFound)
	require.NoError(t, m.DeleteRuleGroup("fake", "payments", "g2"))
	require.ErrorIs(t, m.DeleteNamespace("fake", "other"), ErrNamespaceNotFound)
	require.NoError(t, m.DeleteNamespace("fake", "payments"))
	_, err = os.Stat(filepath.Join(dir, "rules", "fake", "payments.yaml"))
	require.True(t, os.IsNotExist(err))
	waitFor(t, "groups gone", func() bool { return len(m.Groups("fake")) == 0 })

	require.ErrorContains(t, m.SetRuleGroup("fake", "../x", g), "must not start with '.'")
	require.ErrorContains(t, m.SetRuleGroup("fake", "a/b", g), "must not contain '/'")
}

// Loki's layout: files named <ns>.yml or <ns> are namespaces too; hidden
// files and temporary files of atomic writes are not.
func TestStoreLayout(t *testing.T) {
	dir := t.TempDir()
	s, err := NewStore(dir)
	require.NoError(t, err)
	body := "groups:\n- name: g\n  rules:\n  - record: r\n    expr: sum(count_over_time({a=\"b\"}[1m]))\n"
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "t1"), 0o755))
	for _, name := range []string{"a.yml", "b", ".hidden.yaml", ".b.yaml.tmp-123"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "t1", name), []byte(body), 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "not a tenant"), 0o755))
	ts, err := s.Tenants()
	require.NoError(t, err)
	require.Equal(t, []string{"t1"}, ts)
	nss, err := s.Load("t1", ValidationOptions{})
	require.NoError(t, err)
	var names []string
	for _, ns := range nss {
		require.NoError(t, ns.Err)
		names = append(names, ns.Name)
	}
	require.Equal(t, []string{"a", "b"}, names)

	// Writing to an existing namespace keeps its file.
	g := mustGroup(t, "name: g2\nrules:\n- record: r2\n  expr: sum(count_over_time({a=\"b\"}[1m]))\n")
	require.NoError(t, s.SetGroup("t1", "a", g))
	b, err := os.ReadFile(filepath.Join(dir, "t1", "a.yml"))
	require.NoError(t, err)
	require.True(t, strings.Contains(string(b), "name: g2"))
	_, err = os.Stat(filepath.Join(dir, "t1", "a.yaml"))
	require.True(t, os.IsNotExist(err))
}

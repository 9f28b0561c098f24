package ruler

import (
	"context"
	"hash/fnv"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// group is one running rule group of one tenant. The fields above mu are
// immutable after newGroup; mu guards the evaluation results below it. The
// run goroutine alone touches prevSeries.
type group struct {
	m         *Manager
	tenant    string
	namespace string
	def       RuleGroup
	raw       string // canonical YAML of def, to detect changes
	interval  time.Duration
	rules     []any // *alertingRule or *recordingRule, in file order
	statePath string
	cancel    context.CancelFunc
	done      chan struct{}

	mu             sync.Mutex
	lastEvaluation time.Time
	evalDuration   time.Duration

	prevSeries []map[uint64]Sample // per rule: series written last time
	hadState   bool                // a state file was written or restored
}

func newGroup(m *Manager, tenantID, ns string, def RuleGroup) *group {
	interval := time.Duration(def.Interval)
	if interval <= 0 {
		interval = m.cfg.EvaluationInterval.D()
	}
	raw, _ := MarshalGroups(def)
	g := &group{
		m:          m,
		tenant:     tenantID,
		namespace:  ns,
		def:        def,
		raw:        string(raw) + "\x00" + interval.String(),
		interval:   interval,
		statePath:  statePath(m.stateDir, tenantID, ns, def.Name),
		prevSeries: make([]map[uint64]Sample, len(def.Rules)),
		done:       make(chan struct{}),
	}
	for _, r := range def.Rules {
		if r.Alert != "" {
			g.rules = append(g.rules, newAlertingRule(r))
		} else {
			g.rules = append(g.rules, newRecordingRule(r))
		}
	}
	return g
}

// key identifies the group in the manager.
func (g *group) key() string { return groupKey(g.tenant, g.namespace, g.def.Name) }

func groupKey(tenantID, ns, name string) string { return tenantID + "\x00" + ns + "\x00" + name }

// metricName is the rule_group label: namespace;group, as Loki's file;group.
func (g *group) metricName() string { return g.namespace + ";" + g.def.Name }

// alertingRules returns the alerting rules with their restore keys.
func (g *group) alertingRules() map[string]*alertingRule {
	out := map[string]*alertingRule{}
	seen := map[string]int{}
	for _, r := range g.rules {
		ar, ok := r.(*alertingRule)
		if !ok {
			continue
		}
		k := ar.name + "\x00" + ar.def.Expr
		out[ruleKey(ar.name, ar.def.Expr, seen[k])] = ar
		seen[k]++
	}
	return out
}

// evalTimestamp is the last evaluation slot at or before now: slots are
// interval apart with a per-group offset, so groups spread over the
// interval and keep their phase across restarts.
func (g *group) evalTimestamp(now time.Time) time.Time {
	h := fnv.New64a()
	_, _ = h.Write([]byte(g.key()))
	iv := g.interval.Nanoseconds()
	offset := int64(h.Sum64() % uint64(iv))
	n := now.UnixNano()
	adj := n - offset
	base := adj - ((adj%iv)+iv)%iv
	return time.Unix(0, base+offset)
}

// run evaluates the group at every slot until ctx is done.
func (g *group) run(ctx context.Context) {
	defer close(g.done)
	next := g.evalTimestamp(g.m.now()).Add(g.interval)
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		now := g.m.now()
		ts := g.evalTimestamp(now)
		missed := int((ts.Sub(next)) / g.interval)
		g.m.metrics.groupIterations.WithLabelValues(g.tenant, g.metricName()).Add(float64(1 + max(missed, 0)))
		if missed > 0 {
			g.m.metrics.groupMissed.WithLabelValues(g.tenant, g.metricName()).Add(float64(missed))
		}
		g.eval(ctx, ts)
		next = ts.Add(g.interval)
		timer.Reset(time.Until(next))
	}
}

// eval evaluates every rule at ts, in order.
func (g *group) eval(ctx context.Context, ts time.Time) {
	start := time.Now()
	ec := evalContext{
		tenant:         g.tenant,
		query:          g.m.query,
		externalLabels: g.m.cfg.ExternalLabels,
		externalURL:    g.m.externalURL,
		limit:          g.def.Limit,
	}
	gname := g.metricName()
	for i, r := range g.rules {
		if ctx.Err() != nil {
			return
		}
		rs := time.Now()
		var (
			vec  Vector
			err  error
			expr string
		)
		switch r := r.(type) {
		case *alertingRule:
			expr = r.def.Expr
			vec, err = r.eval(ctx, ts, ec)
			dur := time.Since(rs)
			r.mu.Lock()
			r.lastEvaluation, r.evalDuration = ts, dur
			r.mu.Unlock()
			if err == nil {
				g.m.notify(g.tenant, expr, r.toSend(ts, g.m.cfg.ResendDelay.D(), g.interval))
			}
		case *recordingRule:
			expr = r.def.Expr
			vec, err = r.eval(ctx, ts, ec)
			dur := time.Since(rs)
			r.mu.Lock()
			r.lastEvaluation, r.evalDuration = ts, dur
			r.mu.Unlock()
		}
		g.m.metrics.evalDuration.WithLabelValues(g.tenant).Observe(time.Since(rs).Seconds())
		g.m.metrics.evalTotal.WithLabelValues(g.tenant, gname).Inc()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			g.m.metrics.evalFailures.WithLabelValues(g.tenant, gname).Inc()
			g.m.log.Warn("evaluate rule", "tenant", g.tenant, "namespace", g.namespace, "group", g.def.Name, "rule", ruleName(r), "query", strings.TrimSpace(expr), "err", err)
			continue
		}
		g.m.writer.append(g.tenant, ts, g.withStaleness(i, vec))
	}
	dur := time.Since(start)
	g.mu.Lock()
	g.lastEvaluation, g.evalDuration = ts, dur
	g.mu.Unlock()
	g.m.metrics.groupDuration.WithLabelValues(g.tenant).Observe(dur.Seconds())
	g.m.metrics.groupLastEval.WithLabelValues(g.tenant, gname).Set(float64(ts.UnixNano()) / 1e9)
	g.m.metrics.groupLastDuration.WithLabelValues(g.tenant, gname).Set(dur.Seconds())
	g.persist(ts)
}

// withStaleness appends a staleness marker for every series rule i wrote
// last time and not this time.
func (g *group) withStaleness(i int, vec Vector) Vector {
	cur := make(map[uint64]Sample, len(vec))
	for _, s := range vec {
		cur[s.Labels.Hash()] = s
	}
	for h, s := range g.prevSeries[i] {
		if _, ok := cur[h]; !ok {
			vec = append(vec, Sample{Labels: s.Labels, Value: staleNaN})
		}
	}
	g.prevSeries[i] = cur
	return vec
}

func ruleName(r any) string {
	switch r := r.(type) {
	case *alertingRule:
		return r.name
	case *recordingRule:
		return r.def.Record
	}
	return ""
}

// persist writes the group's alert state, or removes the file when the
// group has no alerts left.
func (g *group) persist(ts time.Time) {
	sf := &stateFile{Version: stateVersion, Tenant: g.tenant, Namespace: g.namespace, Group: g.def.Name, EvaluatedAt: ts.UTC()}
	n := 0
	seen := map[string]int{}
	for _, r := range g.rules {
		ar, ok := r.(*alertingRule)
		if !ok {
			continue
		}
		k := ar.name + "\x00" + ar.def.Expr
		alerts := ar.alerts()
		n += len(alerts)
		if len(alerts) > 0 {
			sf.Rules = append(sf.Rules, ruleState{Alert: ar.name, Expr: ar.def.Expr, Index: seen[k], Alerts: encodeAlerts(alerts)})
		}
		seen[k]++
	}
	var err error
	switch {
	case n > 0:
		err = writeState(g.statePath, sf)
		g.hadState = err == nil
	case g.hadState:
		err = removeState(g.statePath)
		g.hadState = err != nil
	}
	if err != nil {
		g.m.metrics.stateWriteFailures.Inc()
		g.m.log.Error("persist alert state", "tenant", g.tenant, "namespace", g.namespace, "group", g.def.Name, "err", err)
	}
}

// restoreFromDisk installs the alerts of the group's state file, written
// by a previous run of the server. After an outage longer than
// for_outage_tolerance pending alerts are not restored (their `for` starts
// over); firing and resolved alerts always are, so resolutions still reach
// Alertmanager.
func (g *group) restoreFromDisk(now time.Time) {
	sf, err := readState(g.statePath)
	if err != nil {
		g.m.log.Error("restore alert state", "tenant", g.tenant, "namespace", g.namespace, "group", g.def.Name, "err", err)
		return
	}
	if sf == nil {
		return
	}
	g.hadState = true
	outage := now.Sub(sf.EvaluatedAt)
	tolerate := outage <= g.m.cfg.ForOutageTolerance.D()
	rules := g.alertingRules()
	restored := 0
	for _, rs := range sf.Rules {
		ar, ok := rules[ruleKey(rs.Alert, rs.Expr, rs.Index)]
		if !ok {
			continue // the rule changed or went away while down
		}
		alerts, err := decodeAlerts(rs.Alerts)
		if err != nil {
			g.m.log.Error("restore alert state", "tenant", g.tenant, "namespace", g.namespace, "group", g.def.Name, "err", &StateCorruptionError{Path: g.statePath, Err: err})
			continue
		}
		keep := alerts[:0]
		for _, a := range alerts {
			if a.State == StatePending && !tolerate {
				continue
			}
			keep = append(keep, a)
		}
		ar.restore(keep, now, g.m.cfg.ForGracePeriod.D())
		restored += len(keep)
	}
	g.m.log.Info("restored alert state", "tenant", g.tenant, "namespace", g.namespace, "group", g.def.Name, "alerts", restored, "outage", outage.Round(time.Millisecond))
}

// copyStateFrom takes over the alerts of the group this one replaces.
func (g *group) copyStateFrom(old *group) {
	oldRules := old.alertingRules()
	for k, ar := range g.alertingRules() {
		if o, ok := oldRules[k]; ok && labels.Equal(o.labels, ar.labels) {
			ar.copyStateFrom(o)
		}
	}
	g.hadState = old.hadState
	g.mu.Lock()
	g.lastEvaluation, g.evalDuration = old.lastEvaluation, old.evalDuration
	g.mu.Unlock()
}

// generatorURL links to the rule's query on this server's query API.
func generatorURL(base, expr string) string {
	return strings.TrimRight(base, "/") + "/loki/api/v1/query?query=" + url.QueryEscape(strings.TrimSpace(expr))
}

package ruler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
)

// Options wire a Manager.
type Options struct {
	Config Config
	// RuleDir is the rule storage directory, StateDir the directory of
	// the alert state files (Config.RuleDir and Config.StateDir).
	RuleDir  string
	StateDir string
	// Query evaluates rule expressions.
	Query QueryFunc
	// StrictSelectors reports whether a tenant's rules must not use
	// selectors that match every stream (require_selective_matcher). Nil
	// means never.
	StrictSelectors func(tenant string) bool
	// ServerURL is this server's base URL, the default external URL.
	ServerURL  string
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Manager loads every tenant's rules from the Store, runs one goroutine per
// rule group, and re-reads the rules every poll interval and after each
// change made through it. Its methods are safe for concurrent use.
type Manager struct {
	cfg         Config
	store       *Store
	stateDir    string
	query       QueryFunc
	strict      func(string) bool
	externalURL string
	log         *slog.Logger
	metrics     *metrics
	now         func() time.Time
	notifier    *notifier
	writer      *remoteWriter
	syncNow     chan struct{}

	mu       sync.Mutex
	groups   map[string]*group // by groupKey
	runCtx   context.Context   // set while Run runs; groups derive from it
	loadErrs map[string]error  // tenant → last load problems
}

// New returns a Manager. It creates the rule and state directories.
func New(opts Options) (*Manager, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	if opts.Query == nil {
		return nil, errors.New("ruler: no query function")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.StrictSelectors == nil {
		opts.StrictSelectors = func(string) bool { return false }
	}
	store, err := NewStore(opts.RuleDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("create ruler state directory: %w", err)
	}
	m := &Manager{
		cfg:         opts.Config,
		store:       store,
		stateDir:    opts.StateDir,
		query:       opts.Query,
		strict:      opts.StrictSelectors,
		externalURL: opts.Config.ExternalURL,
		log:         opts.Logger,
		metrics:     newMetrics(opts.Registerer),
		now:         opts.Now,
		syncNow:     make(chan struct{}, 1),
		groups:      map[string]*group{},
		loadErrs:    map[string]error{},
	}
	if m.externalURL == "" {
		m.externalURL = opts.ServerURL
	}
	if m.notifier, err = newNotifier(opts.Config, m.log, m.metrics); err != nil {
		return nil, err
	}
	if m.writer, err = newRemoteWriter(opts.Config, m.log, m.metrics); err != nil {
		return nil, err
	}
	return m, nil
}

// Store is the manager's rule store.
func (m *Manager) Store() *Store { return m.store }

// Run loads the rules, evaluates them until ctx is done, then stops every
// group (writing its alert state) and flushes notifications and samples.
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	sendCtx, stopSend := context.WithCancel(context.Background())
	wg.Add(2)
	go func() { defer wg.Done(); m.notifier.run(sendCtx) }()
	go func() { defer wg.Done(); m.writer.run(sendCtx) }()

	m.mu.Lock()
	m.runCtx = ctx
	m.mu.Unlock()
	m.sync()
	t := time.NewTicker(m.cfg.PollInterval.D())
	defer t.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-t.C:
		case <-m.syncNow:
		}
		m.sync()
	}
	m.mu.Lock()
	groups := slices.Collect(maps.Values(m.groups))
	m.groups = map[string]*group{}
	m.runCtx = nil
	m.mu.Unlock()
	for _, g := range groups {
		g.stop()
	}
	stopSend()
	wg.Wait()
	return nil
}

func (g *group) stop() {
	g.cancel()
	<-g.done
}

// requestSync asks Run to re-read the rules now.
func (m *Manager) requestSync() {
	select {
	case m.syncNow <- struct{}{}:
	default:
	}
}

// sync makes the running groups match the rule files. A file that fails to
// load keeps its previously loaded groups running.
func (m *Manager) sync() {
	tenants, err := m.store.Tenants()
	if err != nil {
		m.log.Error("list rule tenants", "err", err)
		return
	}
	type want struct {
		tenant, ns string
		def        RuleGroup
	}
	desired := map[string]want{}
	keepNS := map[string]bool{} // tenant\x00ns whose file failed to load
	loadErrs := map[string]error{}
	for _, t := range tenants {
		nss, err := m.store.Load(t, ValidationOptions{StrictSelectors: m.strict(t)})
		if err != nil {
			m.log.Error("load rules", "tenant", t, "err", err)
			loadErrs[t] = err
			keepNS[t] = true
			continue
		}
		var errs []error
		for _, ns := range nss {
			if ns.Err != nil {
				errs = append(errs, ns.Err)
				keepNS[t+"\x00"+ns.Name] = true
				m.log.Error("invalid rule file; its previous rules stay loaded", "tenant", t, "file", ns.Path, "err", ns.Err)
				continue
			}
			for _, g := range ns.Groups {
				desired[groupKey(t, ns.Name, g.Name)] = want{t, ns.Name, g}
			}
		}
		loadErrs[t] = errors.Join(errs...)
		if len(errs) == 0 {
			m.metrics.reloadSuccess.WithLabelValues(t).Set(1)
			m.metrics.reloadSuccessSecond.WithLabelValues(t).SetToCurrentTime()
		} else {
			m.metrics.reloadSuccess.WithLabelValues(t).Set(0)
		}
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	m.loadErrs = loadErrs
	if m.runCtx == nil {
		return
	}
	for k, g := range m.groups {
		if _, ok := desired[k]; ok || keepNS[g.tenant] || keepNS[g.tenant+"\x00"+g.namespace] {
			continue
		}
		g.stop()
		delete(m.groups, k)
		if err := removeState(g.statePath); err != nil {
			m.log.Error("remove alert state of deleted group", "tenant", g.tenant, "group", g.def.Name, "err", err)
		}
		m.metrics.forgetGroup(g.tenant, g.metricName())
		m.log.Info("rule group removed", "tenant", g.tenant, "namespace", g.namespace, "group", g.def.Name)
	}
	for _, k := range slices.Sorted(maps.Keys(desired)) {
		w := desired[k]
		ng := newGroup(m, w.tenant, w.ns, w.def)
		old := m.groups[k]
		if old != nil && old.raw == ng.raw {
			continue
		}
		if old != nil {
			old.stop()
			ng.copyStateFrom(old)
			m.log.Info("rule group reloaded", "tenant", w.tenant, "namespace", w.ns, "group", w.def.Name)
		} else {
			ng.restoreFromDisk(m.now())
			m.log.Info("rule group loaded", "tenant", w.tenant, "namespace", w.ns, "group", w.def.Name, "rules", len(w.def.Rules), "interval", ng.interval)
		}
		m.metrics.groupRules.WithLabelValues(w.tenant, ng.metricName()).Set(float64(len(ng.rules)))
		ctx, cancel := context.WithCancel(m.runCtx)
		ng.cancel = cancel
		m.groups[k] = ng
		go ng.run(ctx)
	}
}

// notify sends alerts of a rule to the Alertmanagers.
func (m *Manager) notify(tenantID, expr string, alerts []Alert) {
	if len(alerts) == 0 || len(m.notifier.ams) == 0 {
		return
	}
	gen := generatorURL(m.externalURL, expr)
	out := make([]amAlert, 0, len(alerts))
	for _, a := range alerts {
		ls := a.Labels.Map()
		for k, v := range m.cfg.ExternalLabels {
			if _, ok := ls[k]; !ok {
				ls[k] = v
			}
		}
		am := amAlert{
			Labels:       ls,
			Annotations:  a.Annotations.Map(),
			StartsAt:     a.FiredAt.UTC().Format(time.RFC3339Nano),
			GeneratorURL: gen,
		}
		if !a.ResolvedAt.IsZero() {
			am.EndsAt = a.ResolvedAt.UTC().Format(time.RFC3339Nano)
		} else {
			am.EndsAt = a.ValidUntil.UTC().Format(time.RFC3339Nano)
		}
		out = append(out, am)
	}
	m.notifier.send(out)
}

// ListRuleGroups returns the tenant's stored groups by namespace.
// ErrNoRuleGroups when there are none.
func (m *Manager) ListRuleGroups(tenantID string) (map[string][]RuleGroup, error) {
	out, err := m.store.List(tenantID)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, ErrNoRuleGroups
	}
	return out, nil
}

// GetRuleGroup returns one stored group (ErrGroupNotFound).
func (m *Manager) GetRuleGroup(tenantID, ns, group string) (RuleGroup, error) {
	return m.store.Group(tenantID, ns, group)
}

// ParseRuleGroup decodes and validates a group for the tenant.
func (m *Manager) ParseRuleGroup(tenantID string, body []byte) (RuleGroup, error) {
	return ParseGroup(body, ValidationOptions{StrictSelectors: m.strict(tenantID)})
}

// SetRuleGroup stores a group (it must come from ParseRuleGroup) and
// applies it at once.
func (m *Manager) SetRuleGroup(tenantID, ns string, g RuleGroup) error {
	if err := m.store.SetGroup(tenantID, ns, g); err != nil {
		return err
	}
	m.requestSync()
	return nil
}

// DeleteRuleGroup deletes a stored group (ErrGroupNotFound).
func (m *Manager) DeleteRuleGroup(tenantID, ns, group string) error {
	if err := m.store.DeleteGroup(tenantID, ns, group); err != nil {
		return err
	}
	m.requestSync()
	return nil
}

// DeleteNamespace deletes a namespace (ErrNamespaceNotFound).
func (m *Manager) DeleteNamespace(tenantID, ns string) error {
	if err := m.store.DeleteNamespace(tenantID, ns); err != nil {
		return err
	}
	m.requestSync()
	return nil
}

// GroupStatus is a running group as the Prometheus rules API shows it.
type GroupStatus struct {
	Namespace      string
	Name           string
	Interval       time.Duration
	Limit          int
	LastEvaluation time.Time
	EvaluationTime time.Duration
	Rules          []RuleStatus
}

// RuleStatus is one rule of a GroupStatus.
type RuleStatus struct {
	Alerting       bool
	Name           string
	Query          string
	For            time.Duration
	KeepFiringFor  time.Duration
	Labels         map[string]string
	Annotations    map[string]string
	State          AlertState // alerting rules only
	Alerts         []Alert    // alerting rules only; pending, firing and recently resolved
	Health         string     // ok, err or unknown
	LastError      string
	LastEvaluation time.Time
	EvaluationTime time.Duration
}

// Groups returns the tenant's running groups, sorted by namespace and name.
func (m *Manager) Groups(tenantID string) []GroupStatus {
	m.mu.Lock()
	var gs []*group
	for _, g := range m.groups {
		if g.tenant == tenantID {
			gs = append(gs, g)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(gs, func(a, b *group) int {
		if c := strings.Compare(a.namespace, b.namespace); c != 0 {
			return c
		}
		return strings.Compare(a.def.Name, b.def.Name)
	})
	out := make([]GroupStatus, 0, len(gs))
	for _, g := range gs {
		g.mu.Lock()
		st := GroupStatus{Namespace: g.namespace, Name: g.def.Name, Interval: g.interval, Limit: g.def.Limit, LastEvaluation: g.lastEvaluation, EvaluationTime: g.evalDuration}
		g.mu.Unlock()
		for _, r := range g.rules {
			st.Rules = append(st.Rules, ruleStatus(r))
		}
		out = append(out, st)
	}
	return out
}

func ruleStatus(r any) RuleStatus {
	switch r := r.(type) {
	case *alertingRule:
		alerts := r.alerts()
		state := r.state()
		r.mu.Lock()
		defer r.mu.Unlock()
		return RuleStatus{
			Alerting: true, Name: r.name, Query: strings.TrimSpace(r.def.Expr),
			For: r.hold, KeepFiringFor: r.keepFiringFor,
			Labels: r.def.Labels, Annotations: r.def.Annotations,
			State: state, Alerts: alerts,
			Health: r.health, LastError: errString(r.lastError),
			LastEvaluation: r.lastEvaluation, EvaluationTime: r.evalDuration,
		}
	case *recordingRule:
		r.mu.Lock()
		defer r.mu.Unlock()
		return RuleStatus{
			Name: r.def.Record, Query: strings.TrimSpace(r.def.Expr), Labels: r.def.Labels,
			Health: r.health, LastError: errString(r.lastError),
			LastEvaluation: r.lastEvaluation, EvaluationTime: r.evalDuration,
		}
	}
	return RuleStatus{}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Alerts returns the tenant's pending and firing alerts.
func (m *Manager) Alerts(tenantID string) []Alert {
	var out []Alert
	for _, g := range m.Groups(tenantID) {
		for _, r := range g.Rules {
			for _, a := range r.Alerts {
				if a.State != StateInactive {
					out = append(out, a)
				}
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Alert) int { return labels.Compare(a.Labels, b.Labels) })
	return out
}

// LoadErrors returns the problems of the tenant's rule files at the last
// reload (nil when every file loaded).
func (m *Manager) LoadErrors(tenantID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.loadErrs[tenantID]
}

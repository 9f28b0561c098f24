package ruler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// AlertState is the state of an alert: Prometheus' inactive, pending and
// firing. A resolved alert is inactive with ResolvedAt set.
type AlertState int

// Alert states.
const (
	StateInactive AlertState = iota
	StatePending
	StateFiring
)

func (s AlertState) String() string {
	switch s {
	case StatePending:
		return "pending"
	case StateFiring:
		return "firing"
	}
	return "inactive"
}

func parseAlertState(s string) (AlertState, error) {
	switch s {
	case "inactive":
		return StateInactive, nil
	case "pending":
		return StatePending, nil
	case "firing":
		return StateFiring, nil
	}
	return 0, fmt.Errorf("unknown alert state %q", s)
}

// resolvedRetention is how long a resolved alert is kept (and re-sent to
// Alertmanager every resend delay) so that a resolution is not lost.
const resolvedRetention = 15 * time.Minute

// Alert is one alert instance of an alerting rule.
type Alert struct {
	State       AlertState
	Labels      model.Labels
	Annotations model.Labels
	Value       float64

	ActiveAt        time.Time
	FiredAt         time.Time
	ResolvedAt      time.Time
	LastSentAt      time.Time
	ValidUntil      time.Time
	KeepFiringSince time.Time

	// holdUntil delays firing of an alert restored after a restart
	// (for_grace_period).
	holdUntil time.Time
}

func (a *Alert) needsSending(ts time.Time, resendDelay time.Duration) bool {
	if a.State == StatePending {
		return false
	}
	// Send a resolution at once, and re-send it like a firing alert.
	if a.ResolvedAt.After(a.LastSentAt) {
		return true
	}
	return a.LastSentAt.Add(resendDelay).Before(ts)
}

// evalContext is what a rule evaluation needs from its group.
type evalContext struct {
	tenant         string
	query          QueryFunc
	externalLabels map[string]string
	externalURL    string
	limit          int
}

// alertingRule is an alerting rule with its alerts. Immutable fields come
// first; mu guards the rest.
type alertingRule struct {
	def           Rule
	name          string
	hold          time.Duration
	keepFiringFor time.Duration
	labels        model.Labels
	annotations   model.Labels
	tmpl          *templateCache // used by eval only

	mu             sync.Mutex
	active         map[uint64]*Alert
	health         string
	lastError      error
	lastEvaluation time.Time
	evalDuration   time.Duration
}

func newAlertingRule(def Rule) *alertingRule {
	return &alertingRule{
		def:           def,
		name:          def.Alert,
		hold:          time.Duration(def.For),
		keepFiringFor: time.Duration(def.KeepFiringFor),
		labels:        labels.FromMap(def.Labels),
		annotations:   labels.FromMap(def.Annotations),
		tmpl:          newTemplateCache(),
		active:        map[uint64]*Alert{},
		health:        "unknown",
	}
}

// errDuplicateLabelset is Prometheus' text.
var errDuplicateLabelset = errors.New("vector contains metrics with the same labelset after applying alert labels")

// eval runs the query at ts and advances the alert state machine. It
// returns the ALERTS and ALERTS_FOR_STATE samples of the active alerts.
func (r *alertingRule) eval(ctx context.Context, ts time.Time, ec evalContext) (Vector, error) {
	res, err := ec.query(ctx, ec.tenant, r.def.Expr, ts)
	if err != nil {
		r.setHealth(err)
		return nil, err
	}
	r.tmpl.query = func(s string) (Vector, error) { return ec.query(ctx, ec.tenant, s, ts) }
	defer func() { r.tmpl.query = nil }()

	// Build the alerts of this evaluation: sample labels without
	// __name__, then the rule's labels, then alertname.
	resultFPs := make(map[uint64]struct{}, len(res))
	fresh := make(map[uint64]*Alert, len(res))
	for _, smp := range res {
		data := templateData{
			Labels:         smp.Labels.Map(),
			ExternalLabels: ec.externalLabels,
			ExternalURL:    ec.externalURL,
			Value:          smp.Value,
		}
		lb := labels.NewBuilder(smp.Labels)
		lb.Del(labels.MetricName)
		r.labels.Range(func(l labels.Label) {
			lb.Set(l.Name, r.tmpl.expand("__alert_"+r.name, l.Value, data))
		})
		lb.Set(labels.AlertName, r.name)
		ab := labels.NewScratchBuilder(r.annotations.Len())
		r.annotations.Range(func(l labels.Label) {
			ab.Add(l.Name, r.tmpl.expand("__alert_"+r.name, l.Value, data))
		})
		ls := lb.Labels()
		h := ls.Hash()
		if _, ok := fresh[h]; ok {
			r.setHealth(errDuplicateLabelset)
			return nil, errDuplicateLabelset
		}
		resultFPs[h] = struct{}{}
		fresh[h] = &Alert{Labels: ls, Annotations: ab.Labels(), ActiveAt: ts, State: StatePending, Value: smp.Value}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	for h, a := range fresh {
		// An alert that is already pending or firing keeps its state and
		// activeAt; only its value and annotations change.
		if old, ok := r.active[h]; ok && old.State != StateInactive {
			old.Value = a.Value
			old.Annotations = a.Annotations
			continue
		}
		r.active[h] = a
	}

	var out Vector
	numActive := 0
	for h, a := range r.active {
		if _, ok := resultFPs[h]; !ok {
			keepFiring := false
			if a.State == StateFiring && r.keepFiringFor > 0 {
				if a.KeepFiringSince.IsZero() {
					a.KeepFiringSince = ts
				}
				keepFiring = ts.Sub(a.KeepFiringSince) < r.keepFiringFor
			}
			// A pending alert that is gone is forgotten; a resolved one
			// is kept for resolvedRetention so its resolution is sent.
			if a.State == StatePending || (!a.ResolvedAt.IsZero() && ts.Sub(a.ResolvedAt) > resolvedRetention) {
				delete(r.active, h)
			}
			if a.State != StateInactive && !keepFiring {
				a.State = StateInactive
				a.ResolvedAt = ts
			}
			if !keepFiring {
				continue
			}
		} else {
			a.KeepFiringSince = time.Time{}
		}
		numActive++
		if a.State == StatePending && ts.Sub(a.ActiveAt) >= r.hold && !ts.Before(a.holdUntil) {
			a.State = StateFiring
			a.FiredAt = ts
		}
		out = append(out, alertsSeries(a), alertsForStateSeries(a))
	}
	if ec.limit > 0 && numActive > ec.limit {
		clear(r.active)
		err := fmt.Errorf("exceeded limit of %d with %d alerts", ec.limit, numActive)
		r.health, r.lastError = "err", err
		return nil, err
	}
	r.health, r.lastError = "ok", nil
	return out, nil
}

func (r *alertingRule) setHealth(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.health, r.lastError = "err", err
}

// alertsSeries is the ALERTS{alertstate} 1 sample of an active alert.
func alertsSeries(a *Alert) Sample {
	lb := labels.NewBuilder(a.Labels)
	lb.Set(labels.MetricName, "ALERTS")
	lb.Set("alertstate", a.State.String())
	return Sample{Labels: lb.Labels(), Value: 1}
}

// alertsForStateSeries is ALERTS_FOR_STATE, valued with activeAt in
// seconds.
func alertsForStateSeries(a *Alert) Sample {
	lb := labels.NewBuilder(a.Labels)
	lb.Set(labels.MetricName, "ALERTS_FOR_STATE")
	return Sample{Labels: lb.Labels(), Value: float64(a.ActiveAt.Unix())}
}

// toSend marks and returns copies of the alerts due to be sent at ts.
func (r *alertingRule) toSend(ts time.Time, resendDelay, interval time.Duration) []Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Alert
	for _, a := range r.active {
		if !a.needsSending(ts, resendDelay) {
			continue
		}
		a.LastSentAt = ts
		// Alertmanager expires an alert that is not re-sent in time.
		a.ValidUntil = ts.Add(4 * max(resendDelay, interval))
		out = append(out, *a)
	}
	return out
}

// alerts returns copies of the alerts, pending and firing first.
func (r *alertingRule) alerts() []Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Alert, 0, len(r.active))
	for _, a := range r.active {
		out = append(out, *a)
	}
	slices.SortFunc(out, func(a, b Alert) int { return labels.Compare(a.Labels, b.Labels) })
	return out
}

// state is the rule's state: firing if any alert fires, else pending if
// any is pending.
func (r *alertingRule) state() AlertState {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := StateInactive
	for _, a := range r.active {
		s = max(s, a.State)
	}
	return s
}

// restore installs alerts from a previous run. With holdUntil set, pending
// alerts whose remaining `for` is shorter than the grace period may not
// fire before holdUntil.
func (r *alertingRule) restore(alerts []Alert, restart time.Time, grace time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range alerts {
		a := a
		if a.State == StatePending && grace > 0 && r.hold >= grace {
			if remaining := r.hold - restart.Sub(a.ActiveAt); remaining < grace {
				a.holdUntil = restart.Add(grace)
			}
		}
		r.active[a.Labels.Hash()] = &a
	}
}

// copyStateFrom takes over the alerts of the rule it replaces on reload.
func (r *alertingRule) copyStateFrom(old *alertingRule) {
	old.mu.Lock()
	defer old.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	maps.Copy(r.active, old.active)
	r.health, r.lastError, r.lastEvaluation, r.evalDuration = old.health, old.lastError, old.lastEvaluation, old.evalDuration
}

package demo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Scenario selects the traffic mix. Each incident scenario is built so that
// one alert of deploy/rules fires (docs/alerting.md has the table).
type Scenario uint8

const (
	// Normal is healthy traffic: about 1% of payment-processor lines are
	// errors, a trickle of SUSPICIOUS fraud lines, no compliance violation.
	Normal Scenario = iota
	// ErrorSpike makes 30% of payment-processor lines (and 12% of
	// payment-gateway lines) errors and slows transactions down.
	ErrorSpike
	// FraudBurst adds FraudBurstRate SUSPICIOUS fraud-detection lines per
	// second on top of the baseline traffic, whatever -rate is.
	FraudBurst
	// ComplianceViolation adds ComplianceRate COMPLIANCE_VIOLATION lines per
	// second (ledger, kyc-service, payment-gateway).
	ComplianceViolation
	// KYCFailures adds KYCFailureRate kyc-service verification_failed lines
	// per second, concentrated on a few countries (NG, RU, BR).
	KYCFailures
)

// Absolute rates of the incident lines, in lines per second, added on top of
// the baseline traffic so that an alert's absolute threshold is crossed at
// any -rate.
const (
	FraudBurstRate = 20.0
	ComplianceRate = 0.2
	KYCFailureRate = 5.0
)

var scenarioNames = [...]string{
	Normal:              "normal",
	ErrorSpike:          "error-spike",
	FraudBurst:          "fraud-burst",
	ComplianceViolation: "compliance-violation",
	KYCFailures:         "kyc-failures",
}

func (s Scenario) String() string {
	if int(s) < len(scenarioNames) {
		return scenarioNames[s]
	}
	return fmt.Sprintf("scenario(%d)", uint8(s))
}

// Scenarios lists every scenario in declaration order.
func Scenarios() []Scenario {
	out := make([]Scenario, len(scenarioNames))
	for i := range out {
		out[i] = Scenario(i)
	}
	return out
}

// ParseScenario returns the scenario with the given name.
func ParseScenario(name string) (Scenario, error) {
	for i, n := range scenarioNames {
		if n == name {
			return Scenario(i), nil
		}
	}
	return 0, fmt.Errorf("unknown scenario %q (known: %s)", name, strings.Join(scenarioNames[:], ", "))
}

// overlayRate is the scenario's incident lines per second, added to the
// baseline traffic.
func (s Scenario) overlayRate() float64 {
	switch s {
	case FraudBurst:
		return FraudBurstRate
	case ComplianceViolation:
		return ComplianceRate
	case KYCFailures:
		return KYCFailureRate
	}
	return 0
}

// Controller holds the active scenario. A scenario set with a duration
// reverts to the base scenario when it expires. It is safe for concurrent
// use; its HTTP handler is the runtime switch.
type Controller struct {
	now func() time.Time // immutable

	mu    sync.Mutex
	base  Scenario
	cur   Scenario
	until time.Time // zero: no expiry
}

// NewController starts in base, which is also where timed scenarios revert.
// now may be nil (time.Now).
func NewController(base Scenario, now func() time.Time) *Controller {
	if now == nil {
		now = time.Now
	}
	return &Controller{now: now, base: base, cur: base}
}

// Set switches to s. A positive d makes the switch last d, then the base
// scenario returns; d <= 0 makes s the new base.
func (c *Controller) Set(s Scenario, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur = s
	if d > 0 {
		c.until = c.now().Add(d)
		return
	}
	c.base = s
	c.until = time.Time{}
}

// Current returns the active scenario.
func (c *Controller) Current() Scenario {
	st := c.State()
	return st.cur
}

// ControllerState is what GET /scenario answers.
type ControllerState struct {
	Name  string     `json:"name"`
	Base  string     `json:"base"`
	Until *time.Time `json:"until,omitempty"`
	cur   Scenario
}

// State returns the active scenario, its base and its expiry.
func (c *Controller) State() ControllerState {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.until.IsZero() && !c.now().Before(c.until) {
		c.cur = c.base
		c.until = time.Time{}
	}
	st := ControllerState{Name: c.cur.String(), Base: c.base.String(), cur: c.cur}
	if !c.until.IsZero() {
		u := c.until.UTC()
		st.Until = &u
	}
	return st
}

// ServeHTTP answers GET /scenario with the state as JSON and switches on
// POST /scenario?name=<scenario>[&duration=<Go duration>].
func (c *Controller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost, http.MethodPut:
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s, err := ParseScenario(r.Form.Get("name"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var d time.Duration
		if v := r.Form.Get("duration"); v != "" {
			if d, err = time.ParseDuration(v); err != nil || d < 0 {
				http.Error(w, fmt.Sprintf("duration %q: want a positive Go duration such as 5m", v), http.StatusBadRequest)
				return
			}
		}
		c.Set(s, d)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(c.State())
}

package loki

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/ruler"
)

// Ruler is what the rules endpoints need of the ruler (*ruler.Manager).
// Methods are safe for concurrent use and do disk I/O; not-found errors
// are ruler.ErrNoRuleGroups, ruler.ErrGroupNotFound and
// ruler.ErrNamespaceNotFound.
type Ruler interface {
	ListRuleGroups(tenant string) (map[string][]ruler.RuleGroup, error)
	GetRuleGroup(tenant, namespace, group string) (ruler.RuleGroup, error)
	// ParseRuleGroup decodes and validates a posted group; its error is
	// the client's.
	ParseRuleGroup(tenant string, body []byte) (ruler.RuleGroup, error)
	SetRuleGroup(tenant, namespace string, g ruler.RuleGroup) error
	DeleteRuleGroup(tenant, namespace, group string) error
	DeleteNamespace(tenant, namespace string) error
	Groups(tenant string) []ruler.GroupStatus
	Alerts(tenant string) []ruler.Alert
}

// maxRuleGroupBody bounds a posted rule group.
const maxRuleGroupBody = 1 << 20

// rulerSlot holds the ruler once the server has started it. Until then the
// rules endpoints answer 503; when the ruler API is disabled, 404.
type rulerSlot struct{ p atomic.Pointer[rulerState] }

type rulerState struct {
	r        Ruler
	disabled bool
}

// SetRuler enables the rules endpoints; nil disables them (404), as when
// ruler.enable_api is false.
func (a *API) SetRuler(r Ruler) {
	a.ruler.p.Store(&rulerState{r: r, disabled: r == nil})
}

// rulerFor resolves the ruler and the tenant, or answers the request.
func (a *API) rulerFor(w http.ResponseWriter, r *http.Request) (Ruler, string, bool) {
	st := a.ruler.p.Load()
	switch {
	case st == nil:
		writeError(w, http.StatusServiceUnavailable, "ruler not ready\n")
		return nil, "", false
	case st.disabled:
		writeError(w, http.StatusNotFound, "404 page not found\n")
		return nil, "", false
	}
	t, err := a.opts.Tenants.Write(r)
	if err != nil {
		code, msg := errorStatus(err)
		if code == http.StatusInternalServerError {
			code = http.StatusBadRequest
		}
		writeError(w, code, msg)
		return nil, "", false
	}
	return st.r, t, true
}

func writeYAML(w http.ResponseWriter, v any) {
	b, err := ruler.MarshalGroups(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(b)
}

// rulerError answers a ruler error with Loki's status and text.
func rulerError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ruler.ErrNoRuleGroups), errors.Is(err, ruler.ErrGroupNotFound), errors.Is(err, ruler.ErrNamespaceNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func respondAccepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"status":"success","data":null,"errorType":"","error":""}`))
}

// listRules is GET /loki/api/v1/rules: YAML namespace → groups.
func (a *API) listRules(w http.ResponseWriter, r *http.Request) {
	rl, t, ok := a.rulerFor(w, r)
	if !ok {
		return
	}
	groups, err := rl.ListRuleGroups(t)
	if err != nil {
		rulerError(w, err)
		return
	}
	writeYAML(w, groups)
}

// getRuleNamespace is GET /loki/api/v1/rules/{namespace}.
func (a *API) getRuleNamespace(w http.ResponseWriter, r *http.Request) {
	rl, t, ok := a.rulerFor(w, r)
	if !ok {
		return
	}
	ns := r.PathValue("namespace")
	groups, err := rl.ListRuleGroups(t)
	if err != nil {
		rulerError(w, err)
		return
	}
	if len(groups[ns]) == 0 {
		rulerError(w, ruler.ErrNoRuleGroups)
		return
	}
	writeYAML(w, map[string][]ruler.RuleGroup{ns: groups[ns]})
}

// getRuleGroup is GET /loki/api/v1/rules/{namespace}/{group}.
func (a *API) getRuleGroup(w http.ResponseWriter, r *http.Request) {
	rl, t, ok := a.rulerFor(w, r)
	if !ok {
		return
	}
	g, err := rl.GetRuleGroup(t, r.PathValue("namespace"), r.PathValue("group"))
	if err != nil {
		rulerError(w, err)
		return
	}
	writeYAML(w, g)
}

// setRuleGroup is POST /loki/api/v1/rules/{namespace}: a group as YAML.
// An invalid group is a 400 naming every problem, and nothing is saved.
func (a *API) setRuleGroup(w http.ResponseWriter, r *http.Request) {
	rl, t, ok := a.rulerFor(w, r)
	if !ok {
		return
	}
	ns := r.PathValue("namespace")
	if err := ruler.ValidateNamespace(ns); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRuleGroupBody+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(body) > maxRuleGroupBody {
		writeError(w, http.StatusRequestEntityTooLarge, "rule group too large")
		return
	}
	g, err := rl.ParseRuleGroup(t, body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid rule group: "+err.Error())
		return
	}
	if err := rl.SetRuleGroup(t, ns, g); err != nil {
		rulerError(w, err)
		return
	}
	respondAccepted(w)
}

// deleteRuleGroup is DELETE /loki/api/v1/rules/{namespace}/{group}.
func (a *API) deleteRuleGroup(w http.ResponseWriter, r *http.Request) {
	rl, t, ok := a.rulerFor(w, r)
	if !ok {
		return
	}
	if err := rl.DeleteRuleGroup(t, r.PathValue("namespace"), r.PathValue("group")); err != nil {
		rulerError(w, err)
		return
	}
	respondAccepted(w)
}

// deleteRuleNamespace is DELETE /loki/api/v1/rules/{namespace}.
func (a *API) deleteRuleNamespace(w http.ResponseWriter, r *http.Request) {
	rl, t, ok := a.rulerFor(w, r)
	if !ok {
		return
	}
	if err := rl.DeleteNamespace(t, r.PathValue("namespace")); err != nil {
		rulerError(w, err)
		return
	}
	respondAccepted(w)
}

// Prometheus-format JSON of /prometheus/api/v1/rules and /alerts.

type promRulesResponse struct {
	Status string        `json:"status"`
	Data   promRulesData `json:"data"`
}

type promRulesData struct {
	Groups []promGroup `json:"groups"`
}

type promGroup struct {
	Name           string    `json:"name"`
	File           string    `json:"file"`
	Rules          []any     `json:"rules"`
	Interval       float64   `json:"interval"`
	Limit          int       `json:"limit"`
	EvaluationTime float64   `json:"evaluationTime"`
	LastEvaluation time.Time `json:"lastEvaluation"`
}

type promAlertingRule struct {
	State          string            `json:"state"`
	Name           string            `json:"name"`
	Query          string            `json:"query"`
	Duration       float64           `json:"duration"`
	KeepFiringFor  float64           `json:"keepFiringFor"`
	Labels         map[string]string `json:"labels"`
	Annotations    map[string]string `json:"annotations"`
	Alerts         []promAlert       `json:"alerts"`
	Health         string            `json:"health"`
	LastError      string            `json:"lastError,omitempty"`
	EvaluationTime float64           `json:"evaluationTime"`
	LastEvaluation time.Time         `json:"lastEvaluation"`
	Type           string            `json:"type"`
}

type promRecordingRule struct {
	Name           string            `json:"name"`
	Query          string            `json:"query"`
	Labels         map[string]string `json:"labels,omitempty"`
	Health         string            `json:"health"`
	LastError      string            `json:"lastError,omitempty"`
	EvaluationTime float64           `json:"evaluationTime"`
	LastEvaluation time.Time         `json:"lastEvaluation"`
	Type           string            `json:"type"`
}

type promAlert struct {
	Labels          map[string]string `json:"labels"`
	Annotations     map[string]string `json:"annotations"`
	State           string            `json:"state"`
	ActiveAt        *time.Time        `json:"activeAt,omitempty"`
	KeepFiringSince *time.Time        `json:"keepFiringSince,omitempty"`
	Value           string            `json:"value"`
}

func toPromAlert(a ruler.Alert) promAlert {
	pa := promAlert{
		Labels:      a.Labels.Map(),
		Annotations: a.Annotations.Map(),
		State:       a.State.String(),
		Value:       strconv.FormatFloat(a.Value, 'e', -1, 64),
	}
	if !a.ActiveAt.IsZero() {
		t := a.ActiveAt.UTC()
		pa.ActiveAt = &t
	}
	if !a.KeepFiringSince.IsZero() {
		t := a.KeepFiringSince.UTC()
		pa.KeepFiringSince = &t
	}
	return pa
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// prometheusRules is GET /prometheus/api/v1/rules with Prometheus' filters
// type=alert|record, rule_name[], rule_group[], file[] and exclude_alerts.
func (a *API) prometheusRules(w http.ResponseWriter, r *http.Request) {
	rl, t, ok := a.rulerFor(w, r)
	if !ok || !parseForm(w, r) {
		return
	}
	typ := r.Form.Get("type")
	if typ != "" && typ != "alert" && typ != "record" {
		writeError(w, http.StatusBadRequest, `unsupported rule type "`+typ+`", want alert or record`)
		return
	}
	names, groupNames, files := r.Form["rule_name[]"], r.Form["rule_group[]"], r.Form["file[]"]
	excludeAlerts := r.Form.Get("exclude_alerts") == "true"
	filtered := typ != "" || len(names) > 0
	resp := promRulesResponse{Status: "success", Data: promRulesData{Groups: []promGroup{}}}
	for _, g := range rl.Groups(t) {
		if len(groupNames) > 0 && !slices.Contains(groupNames, g.Name) || len(files) > 0 && !slices.Contains(files, g.Namespace) {
			continue
		}
		pg := promGroup{
			Name: g.Name, File: g.Namespace, Rules: []any{}, Interval: g.Interval.Seconds(), Limit: g.Limit,
			EvaluationTime: g.EvaluationTime.Seconds(), LastEvaluation: g.LastEvaluation.UTC(),
		}
		for _, rs := range g.Rules {
			if len(names) > 0 && !slices.Contains(names, rs.Name) {
				continue
			}
			if rs.Alerting && typ != "record" {
				pr := promAlertingRule{
					State: rs.State.String(), Name: rs.Name, Query: rs.Query,
					Duration: rs.For.Seconds(), KeepFiringFor: rs.KeepFiringFor.Seconds(),
					Labels: nonNil(rs.Labels), Annotations: nonNil(rs.Annotations), Alerts: []promAlert{},
					Health: rs.Health, LastError: rs.LastError,
					EvaluationTime: rs.EvaluationTime.Seconds(), LastEvaluation: rs.LastEvaluation.UTC(), Type: "alerting",
				}
				if !excludeAlerts {
					for _, al := range rs.Alerts {
						if al.State != ruler.StateInactive {
							pr.Alerts = append(pr.Alerts, toPromAlert(al))
						}
					}
				}
				pg.Rules = append(pg.Rules, pr)
			}
			if !rs.Alerting && typ != "alert" {
				pg.Rules = append(pg.Rules, promRecordingRule{
					Name: rs.Name, Query: rs.Query, Labels: rs.Labels,
					Health: rs.Health, LastError: rs.LastError,
					EvaluationTime: rs.EvaluationTime.Seconds(), LastEvaluation: rs.LastEvaluation.UTC(), Type: "recording",
				})
			}
		}
		if filtered && len(pg.Rules) == 0 {
			continue
		}
		resp.Data.Groups = append(resp.Data.Groups, pg)
	}
	writeJSON(w, resp)
}

// prometheusAlerts is GET /prometheus/api/v1/alerts: pending and firing
// alerts.
func (a *API) prometheusAlerts(w http.ResponseWriter, r *http.Request) {
	rl, t, ok := a.rulerFor(w, r)
	if !ok {
		return
	}
	alerts := []promAlert{}
	for _, al := range rl.Alerts(t) {
		alerts = append(alerts, toPromAlert(al))
	}
	writeJSON(w, map[string]any{"status": "success", "data": map[string]any{"alerts": alerts}})
}

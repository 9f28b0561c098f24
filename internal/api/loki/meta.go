package loki

import (
	"net/http"
	"sort"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage"
)

// metaDefaultSince is Loki's default window of label and series calls.
const metaDefaultSince = 6 * time.Hour

type metaRequest struct {
	tenants  []string
	matchers [][]*model.Matcher // alternatives (series accepts several match[])
	r        model.TimeRange
}

func (a *API) parseMeta(w http.ResponseWriter, r *http.Request, selectorParams ...string) (*metaRequest, bool) {
	if !parseForm(w, r) {
		return nil, false
	}
	tenants, err := a.opts.Tenants.Read(r)
	if err != nil {
		status, msg := errorStatus(err)
		writeError(w, status, msg)
		return nil, false
	}
	start, end, err := bounds(r, a.opts.Now(), metaDefaultSince)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	if end < start {
		writeError(w, http.StatusBadRequest, "end timestamp must not be before or equal to start time")
		return nil, false
	}
	m := &metaRequest{tenants: tenants, r: model.TimeRange{Min: start, Max: end + 1}}
	for _, name := range selectorParams {
		for _, q := range r.Form[name] {
			if q == "" {
				continue
			}
			ms, err := syntax.ParseMatchers(q)
			if err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return nil, false
			}
			m.matchers = append(m.matchers, ms)
		}
	}
	return m, true
}

// each runs fn per tenant and matcher alternative.
func (m *metaRequest) each(fn func(tenantID string, ms []*model.Matcher) error) error {
	alts := m.matchers
	if len(alts) == 0 {
		alts = [][]*model.Matcher{nil}
	}
	for _, t := range m.tenants {
		for _, ms := range alts {
			if err := fn(t, ms); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *API) labels(w http.ResponseWriter, r *http.Request) {
	m, ok := a.parseMeta(w, r, "query")
	if !ok {
		return
	}
	set := map[string]struct{}{}
	err := m.each(func(t string, ms []*model.Matcher) error {
		names, err := a.opts.Store.LabelNames(r.Context(), t, ms, m.r)
		for _, n := range names {
			set[n] = struct{}{}
		}
		return err
	})
	if err != nil {
		status, msg := errorStatus(err)
		writeError(w, status, msg)
		return
	}
	if len(m.tenants) > 1 {
		set[model.TenantLabel] = struct{}{}
	}
	writeJSON(w, map[string]any{"status": "success", "data": sortedSet(set)})
}

func (a *API) labelValues(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	m, ok := a.parseMeta(w, r, "query")
	if !ok {
		return
	}
	set := map[string]struct{}{}
	if name == model.TenantLabel && len(m.tenants) > 1 {
		for _, t := range m.tenants {
			set[t] = struct{}{}
		}
	}
	err := m.each(func(t string, ms []*model.Matcher) error {
		vals, err := a.opts.Store.LabelValues(r.Context(), t, name, ms, m.r)
		for _, v := range vals {
			set[v] = struct{}{}
		}
		return err
	})
	if err != nil {
		status, msg := errorStatus(err)
		writeError(w, status, msg)
		return
	}
	writeJSON(w, map[string]any{"status": "success", "data": sortedSet(set)})
}

func sortedSet(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (a *API) series(w http.ResponseWriter, r *http.Request) {
	m, ok := a.parseMeta(w, r, "match[]", "match")
	if !ok {
		return
	}
	if len(m.matchers) == 0 {
		writeError(w, http.StatusBadRequest, "at least one matcher is required. For instance match[]={app=\"foo\"}")
		return
	}
	seen := map[string]bool{}
	var out []map[string]string
	err := m.each(func(t string, ms []*model.Matcher) error {
		series, err := a.opts.Store.Series(r.Context(), t, ms, m.r)
		for _, ls := range series {
			if len(m.tenants) > 1 {
				b := model.NewLabelsBuilder(ls)
				b.Set(model.TenantLabel, t)
				ls = b.Labels()
			}
			k := ls.String()
			if seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, ls.Map())
		}
		return err
	})
	if err != nil {
		status, msg := errorStatus(err)
		writeError(w, status, msg)
		return
	}
	if out == nil {
		out = []map[string]string{}
	}
	writeJSON(w, map[string]any{"status": "success", "data": out})
}

func (a *API) indexStats(w http.ResponseWriter, r *http.Request) {
	m, ok := a.parseMeta(w, r, "query")
	if !ok {
		return
	}
	var total storage.IndexStats
	err := m.each(func(t string, ms []*model.Matcher) error {
		st, err := a.opts.Store.Stats(r.Context(), t, ms, m.r)
		total.Streams += st.Streams
		total.Chunks += st.Chunks
		total.Entries += st.Entries
		total.Bytes += st.Bytes
		return err
	})
	if err != nil {
		status, msg := errorStatus(err)
		writeError(w, status, msg)
		return
	}
	writeJSON(w, total)
}

package loki

import (
	"net/http"

	"go.yaml.in/yaml/v3"

	"github.com/ledgerlog/ledgerlog/internal/tenant"
)

// patternsEnabled tells Logs Drilldown that /patterns answers with real
// patterns (clustered on demand from stored lines), so it shows its
// Patterns tab.
const patternsEnabled = true

// drilldownLimits serves /loki/api/v1/drilldown-limits: the allow-listed
// limits of the (first) tenant that Logs Drilldown reads, whether patterns
// are served, and the Loki version. Durations are strings ("30d1h"), sizes
// are byte counts.
func (a *API) drilldownLimits(w http.ResponseWriter, r *http.Request) {
	tenants, err := a.opts.Tenants.Read(r)
	if err != nil {
		status, msg := errorStatus(err)
		writeError(w, status, msg)
		return
	}
	l := a.opts.Overrides.For(tenants[0])
	writeJSON(w, map[string]any{
		"limits":                   drilldownLimitValues(l),
		"pattern_ingester_enabled": patternsEnabled,
		"version":                  a.opts.Version,
	})
}

func drilldownLimitValues(l *tenant.Limits) map[string]any {
	names := func(ss []string) []string {
		if ss == nil {
			return []string{}
		}
		return ss
	}
	return map[string]any{
		"discover_log_levels":         l.DiscoverLogLevels,
		"discover_service_name":       names(l.DiscoverServiceName),
		"log_level_fields":            names(l.LogLevelFields),
		"max_entries_limit_per_query": l.MaxEntriesLimitPerQuery,
		"max_line_size_truncate":      l.MaxLineSizeTruncate,
		"max_query_bytes_read":        int64(l.MaxQueryBytesRead),
		"max_query_length":            l.MaxQueryLength.String(),
		"max_query_lookback":          l.MaxQueryLookback.String(),
		"max_query_range":             l.MaxQueryRange.String(),
		"max_query_series":            l.MaxQuerySeries,
		"metric_aggregation_enabled":  false,
		"otlp_config":                 map[string]any{},
		"pattern_persistence_enabled": false,
		"query_timeout":               l.QueryTimeout.String(),
		"retention_period":            l.RetentionPeriod.String(),
		"retention_stream":            []any{},
		"volume_enabled":              l.VolumeEnabled,
		"volume_max_series":           l.VolumeMaxSeries,
	}
}

// tenantLimits serves /config/tenant/v1/limits: every limit of the (first)
// tenant as YAML with Loki's keys, as Loki's runtime-config endpoint does.
func (a *API) tenantLimits(w http.ResponseWriter, r *http.Request) {
	tenants, err := a.opts.Tenants.Read(r)
	if err != nil {
		status, msg := errorStatus(err)
		writeError(w, status, msg)
		return
	}
	b, err := yaml.Marshal(a.opts.Overrides.For(tenants[0]))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encode limits: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(b)
}

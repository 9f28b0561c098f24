// Package loki owns Ledgerlog's Loki-compatible HTTP API: push (Loki
// protobuf/JSON, OTLP), queries, label and series metadata, index stats and
// the operational endpoints, with Loki's parameter parsing, JSON shapes,
// status codes and plain-text errors.
package loki

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/klauspost/compress/gzhttp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ledgerlog/ledgerlog/internal/ingest"
	"github.com/ledgerlog/ledgerlog/internal/logql/engine"
	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage"
	"github.com/ledgerlog/ledgerlog/internal/storage/head"
	"github.com/ledgerlog/ledgerlog/internal/tenant"
)

// Store is what the API needs of storage. Methods are safe for concurrent
// use.
type Store interface {
	Push(tenantID string, streams []model.Stream, l head.Limits) error
	Series(ctx context.Context, tenantID string, ms []*model.Matcher, r model.TimeRange) ([]model.Labels, error)
	LabelNames(ctx context.Context, tenantID string, ms []*model.Matcher, r model.TimeRange) ([]string, error)
	LabelValues(ctx context.Context, tenantID, name string, ms []*model.Matcher, r model.TimeRange) ([]string, error)
	Stats(ctx context.Context, tenantID string, ms []*model.Matcher, r model.TimeRange) (storage.IndexStats, error)
	Flush(ctx context.Context, all bool) error
	Ready() bool
}

// Engine evaluates LogQL.
type Engine interface {
	Exec(ctx context.Context, p engine.Params) (engine.Result, error)
}

// Options wire the API.
type Options struct {
	Store       Store
	Engine      Engine
	Overrides   *tenant.Overrides
	Tenants     tenant.Resolver
	Validator   *ingest.Validator
	MaxPushBody int64
	OTLP        ingest.OTLPConfig
	Gatherer    prometheus.Gatherer
	Registerer  prometheus.Registerer
	Logger      *slog.Logger
	LogLevel    *slog.LevelVar
	ConfigYAML  func(mode string) ([]byte, error)
	Version     string
	Now         func() time.Time
}

// API serves the HTTP endpoints.
type API struct {
	opts     Options
	log      *slog.Logger
	duration *prometheus.HistogramVec
	ruler    rulerSlot // set by SetRuler (rules.go)
}

// New returns the API.
func New(opts Options) *API {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &API{
		opts: opts,
		log:  opts.Logger,
		duration: promauto.With(opts.Registerer).NewHistogramVec(prometheus.HistogramOpts{
			Name:    "loki_request_duration_seconds",
			Help:    "Time (in seconds) spent serving HTTP requests.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 25, 50, 100},
		}, []string{"method", "route", "status_code", "ws"}),
	}
}

// Handler returns the HTTP handler with every route.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern, name string, h http.HandlerFunc) {
		mux.Handle(pattern, a.instrument(name, h))
	}
	// Ingest.
	route("POST /loki/api/v1/push", "loki_api_v1_push", a.push)
	route("POST /api/prom/push", "api_prom_push", a.pushLegacy)
	route("POST /otlp/v1/logs", "otlp_v1_logs", a.pushOTLP)

	// Queries.
	for _, p := range []string{"/loki/api/v1/query_range", "/api/prom/query_range"} {
		route(p, "loki_api_v1_query_range", a.queryRange)
	}
	route("/loki/api/v1/query", "loki_api_v1_query", a.queryInstant)
	for _, p := range []string{"/loki/api/v1/labels", "/loki/api/v1/label", "/api/prom/label"} {
		route(p, "loki_api_v1_labels", a.labels)
	}
	for _, p := range []string{"/loki/api/v1/label/{name}/values", "/api/prom/label/{name}/values"} {
		route(p, "loki_api_v1_label_name_values", a.labelValues)
	}
	for _, p := range []string{"/loki/api/v1/series", "/api/prom/series"} {
		route(p, "loki_api_v1_series", a.series)
	}
	route("/loki/api/v1/index/stats", "loki_api_v1_index_stats", a.indexStats)
	route("/loki/api/v1/status/buildinfo", "loki_api_v1_status_buildinfo", a.buildInfo)
	route("/loki/api/v1/index/volume", "loki_api_v1_index_volume", a.volume)
	route("/loki/api/v1/index/volume_range", "loki_api_v1_index_volume_range", a.volumeRange)
	route("/loki/api/v1/detected_labels", "loki_api_v1_detected_labels", a.detectedLabels)
	route("/loki/api/v1/detected_fields", "loki_api_v1_detected_fields", a.detectedFields)
	route("/loki/api/v1/detected_field/{name}/values", "loki_api_v1_detected_field_values", a.detectedFieldValues)
	route("/loki/api/v1/patterns", "loki_api_v1_patterns", a.patterns)
	route("/loki/api/v1/drilldown-limits", "loki_api_v1_drilldown_limits", a.drilldownLimits)
	route("GET /config/tenant/v1/limits", "config_tenant_v1_limits", a.tenantLimits)
	route("/loki/api/v1/format_query", "loki_api_v1_format_query", a.formatQuery)
	route("GET /loki/api/v1/tail", "loki_api_v1_tail", a.tail)
	route("GET /api/prom/tail", "api_prom_tail", a.tailLegacy)
	route("/api/prom/query", "api_prom_query", a.queryLegacy)

	// Ruler (rules.go).
	for _, p := range []string{"/loki/api/v1/rules", "/api/prom/rules"} {
		route("GET "+p, "loki_api_v1_rules", a.listRules)
		route("GET "+p+"/{namespace}", "loki_api_v1_rules_namespace", a.getRuleNamespace)
		route("POST "+p+"/{namespace}", "loki_api_v1_rules_namespace", a.setRuleGroup)
		route("DELETE "+p+"/{namespace}", "loki_api_v1_rules_namespace", a.deleteRuleNamespace)
		route("GET "+p+"/{namespace}/{group}", "loki_api_v1_rules_namespace_group", a.getRuleGroup)
		route("DELETE "+p+"/{namespace}/{group}", "loki_api_v1_rules_namespace_group", a.deleteRuleGroup)
	}
	for _, p := range []string{"/prometheus/api/v1", "/api/prom/api/v1"} {
		route("GET "+p+"/rules", "prometheus_api_v1_rules", a.prometheusRules)
		route("GET "+p+"/alerts", "prometheus_api_v1_alerts", a.prometheusAlerts)
	}

	// Operations.
	route("GET /ready", "ready", a.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.opts.Gatherer, promhttp.HandlerOpts{}))
	route("GET /config", "config", a.config)
	route("POST /flush", "flush", a.flush)
	route("/log_level", "log_level", a.logLevel)
	route("GET /services", "services", a.services)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	route("/", "other", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "404 page not found\n")
	})
	gz, err := gzhttp.NewWrapper(gzhttp.MinSize(1024))
	if err != nil {
		return mux
	}
	return gz(mux)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (a *API) instrument(route string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h(rec, r)
		a.duration.WithLabelValues(r.Method, route, itoa(rec.status), "false").Observe(time.Since(start).Seconds())
		if tags := r.Header.Get("X-Query-Tags"); tags != "" {
			a.log.Debug("request", "route", route, "status", rec.status, "duration", time.Since(start), "query_tags", tags)
		}
	})
}

func itoa(n int) string {
	switch n {
	case 200:
		return "200"
	case 204:
		return "204"
	case 400:
		return "400"
	}
	b := make([]byte, 0, 3)
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

// parseForm parses query string and url-encoded bodies (GET and POST).
func parseForm(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return false
	}
	return true
}

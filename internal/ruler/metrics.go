package ruler

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the ruler's metrics, named as Loki exposes them (Prometheus'
// rule manager metrics with the loki_prometheus_ prefix and a `user` label
// for the tenant).
type metrics struct {
	evalDuration        *prometheus.HistogramVec
	groupDuration       *prometheus.HistogramVec
	evalTotal           *prometheus.CounterVec
	evalFailures        *prometheus.CounterVec
	groupIterations     *prometheus.CounterVec
	groupMissed         *prometheus.CounterVec
	groupRules          *prometheus.GaugeVec
	groupLastEval       *prometheus.GaugeVec
	groupLastDuration   *prometheus.GaugeVec
	reloadSuccess       *prometheus.GaugeVec
	reloadSuccessSecond *prometheus.GaugeVec
	stateWriteFailures  prometheus.Counter

	notificationsSent       *prometheus.CounterVec
	notificationErrors      *prometheus.CounterVec
	notificationsDropped    prometheus.Counter
	notificationQueueLength *prometheus.GaugeVec
	alertmanagers           prometheus.Gauge

	rwSent        *prometheus.CounterVec
	rwFailed      *prometheus.CounterVec
	rwRetries     *prometheus.CounterVec
	rwDropped     *prometheus.CounterVec
	rwQueueLength *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	group := []string{"user", "rule_group"}
	return &metrics{
		evalDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "loki_prometheus_rule_evaluation_duration_seconds",
			Help:    "The duration for a rule to execute.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"user"}),
		groupDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "loki_prometheus_rule_group_duration_seconds",
			Help:    "The duration of rule group evaluations.",
			Buckets: []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 120},
		}, []string{"user"}),
		evalTotal: f.NewCounterVec(prometheus.CounterOpts{
			Name: "loki_prometheus_rule_evaluations_total",
			Help: "The total number of rule evaluations.",
		}, group),
		evalFailures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "loki_prometheus_rule_evaluation_failures_total",
			Help: "The total number of rule evaluation failures.",
		}, group),
		groupIterations: f.NewCounterVec(prometheus.CounterOpts{
			Name: "loki_prometheus_rule_group_iterations_total",
			Help: "The total number of scheduled rule group evaluations, whether executed or missed.",
		}, group),
		groupMissed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "loki_prometheus_rule_group_iterations_missed_total",
			Help: "The total number of rule group evaluations missed due to slow rule group evaluation.",
		}, group),
		groupRules: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loki_prometheus_rule_group_rules",
			Help: "The number of rules loaded.",
		}, group),
		groupLastEval: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loki_prometheus_rule_group_last_evaluation_timestamp_seconds",
			Help: "The timestamp of the last rule group evaluation in seconds.",
		}, group),
		groupLastDuration: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loki_prometheus_rule_group_last_duration_seconds",
			Help: "The duration of the last rule group evaluation.",
		}, group),
		reloadSuccess: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loki_ruler_config_last_reload_successful",
			Help: "Whether the last reload of the tenant's rule files succeeded (every file valid).",
		}, []string{"user"}),
		reloadSuccessSecond: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loki_ruler_config_last_reload_successful_seconds",
			Help: "Timestamp of the last successful reload of the tenant's rule files.",
		}, []string{"user"}),
		stateWriteFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "loki_ruler_alert_state_write_failures_total",
			Help: "Failed writes of alert state files.",
		}),
		notificationsSent: f.NewCounterVec(prometheus.CounterOpts{
			Name: "loki_prometheus_notifications_sent_total",
			Help: "Total number of alerts sent.",
		}, []string{"alertmanager"}),
		notificationErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "loki_prometheus_notifications_errors_total",
			Help: "Total number of alerts affected by errors when sending them to Alertmanager.",
		}, []string{"alertmanager"}),
		notificationsDropped: f.NewCounter(prometheus.CounterOpts{
			Name: "loki_prometheus_notifications_dropped_total",
			Help: "Total number of alerts dropped due to errors when sending to Alertmanager or a full queue.",
		}),
		notificationQueueLength: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loki_prometheus_notifications_queue_length",
			Help: "The number of alert notifications in the queue.",
		}, []string{"alertmanager"}),
		alertmanagers: f.NewGauge(prometheus.GaugeOpts{
			Name: "loki_prometheus_notifications_alertmanagers_discovered",
			Help: "The number of alertmanagers discovered and active.",
		}),
		rwSent: f.NewCounterVec(prometheus.CounterOpts{
			Name: "loki_ruler_remote_write_samples_total",
			Help: "Samples of recording rules accepted by the remote-write endpoint.",
		}, []string{"remote_name"}),
		rwFailed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "loki_ruler_remote_write_samples_failed_total",
			Help: "Samples the remote-write endpoint rejected (not retried).",
		}, []string{"remote_name"}),
		rwRetries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "loki_ruler_remote_write_samples_retried_total",
			Help: "Samples whose send failed recoverably and was retried.",
		}, []string{"remote_name"}),
		rwDropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "loki_ruler_remote_write_samples_dropped_total",
			Help: "Samples dropped because the queue was full.",
		}, []string{"remote_name"}),
		rwQueueLength: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loki_ruler_remote_write_queue_length",
			Help: "Samples waiting to be remote-written.",
		}, []string{"remote_name"}),
	}
}

func (m *metrics) forgetGroup(tenant, group string) {
	for _, v := range []*prometheus.CounterVec{m.evalTotal, m.evalFailures, m.groupIterations, m.groupMissed} {
		v.DeleteLabelValues(tenant, group)
	}
	for _, v := range []*prometheus.GaugeVec{m.groupRules, m.groupLastEval, m.groupLastDuration} {
		v.DeleteLabelValues(tenant, group)
	}
}

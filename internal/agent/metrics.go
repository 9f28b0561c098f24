package agent

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Drop reasons of promtail_dropped_entries_total, as Promtail names them.
const (
	reasonGeneric     = "ingester_error"
	reasonRateLimited = "rate_limited"
	reasonStreamLimit = "stream_limited"
	reasonLineTooLong = "line_too_long"
	reasonReadRate    = "readline_rate_limited"
)

// Metrics are the agent's Prometheus metrics under Promtail's names. One
// instance lives for the whole process and survives config reloads.
type Metrics struct {
	Registry *prometheus.Registry

	readBytes      *prometheus.GaugeVec
	fileBytes      *prometheus.GaugeVec
	readLines      *prometheus.CounterVec
	filesActive    prometheus.Gauge
	targetsActive  prometheus.Gauge
	targetsFailed  *prometheus.CounterVec
	encodedBytes   *prometheus.CounterVec
	sentBytes      *prometheus.CounterVec
	sentEntries    *prometheus.CounterVec
	droppedBytes   *prometheus.CounterVec
	droppedEntries *prometheus.CounterVec
	mutatedEntries *prometheus.CounterVec
	mutatedBytes   *prometheus.CounterVec
	requestSeconds *prometheus.HistogramVec
	batchRetries   *prometheus.CounterVec
	streamLag      *prometheus.GaugeVec
	reloadSuccess  prometheus.Counter
	reloadFail     prometheus.Counter

	rotations      prometheus.Counter
	truncations    prometheus.Counter
	truncatedLines prometheus.Counter
	bufferBytes    *prometheus.GaugeVec
	syslogEntries  prometheus.Counter
	syslogErrors   prometheus.Counter
	pushEntries    prometheus.Counter
}

// NewMetrics registers the agent metrics, plus the Go and process
// collectors, in a fresh registry.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{Registry: r}
	m.readBytes = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "promtail_read_bytes_total", Help: "Number of bytes read."}, []string{"path"})
	m.fileBytes = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "promtail_file_bytes_total", Help: "Number of bytes total."}, []string{"path"})
	m.readLines = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "promtail_read_lines_total", Help: "Number of lines read."}, []string{"path"})
	m.filesActive = prometheus.NewGauge(prometheus.GaugeOpts{Name: "promtail_files_active_total", Help: "Number of active files."})
	m.targetsActive = prometheus.NewGauge(prometheus.GaugeOpts{Name: "promtail_targets_active_total", Help: "Number of active targets."})
	m.targetsFailed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "promtail_targets_failed_total", Help: "Number of failed targets."}, []string{"reason"})
	m.encodedBytes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "promtail_encoded_bytes_total", Help: "Number of bytes encoded and ready to send."}, []string{"host"})
	m.sentBytes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "promtail_sent_bytes_total", Help: "Number of bytes sent."}, []string{"host"})
	m.sentEntries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "promtail_sent_entries_total", Help: "Number of log entries sent to the ingester."}, []string{"host"})
	m.droppedBytes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "promtail_dropped_bytes_total", Help: "Number of bytes dropped because failed to be sent to the ingester after all retries."}, []string{"host", "tenant", "reason"})
	m.droppedEntries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "promtail_dropped_entries_total", Help: "Number of log entries dropped because failed to be sent to the ingester after all retries."}, []string{"host", "tenant", "reason"})
	m.mutatedEntries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "promtail_mutated_entries_total", Help: "The total number of log entries that have been mutated."}, []string{"host", "tenant", "reason"})
	m.mutatedBytes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "promtail_mutated_bytes_total", Help: "The total number of bytes that have been mutated."}, []string{"host", "tenant", "reason"})
	m.requestSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "promtail_request_duration_seconds", Help: "Duration of send requests.", Buckets: prometheus.DefBuckets}, []string{"status_code", "host", "tenant"})
	m.batchRetries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "promtail_batch_retries_total", Help: "Number of times batches has had to be retried."}, []string{"host", "tenant"})
	m.streamLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "promtail_stream_lag_seconds", Help: "Difference between current time and last batch timestamp for successful sends."}, []string{"host", "tenant"})
	m.reloadSuccess = prometheus.NewCounter(prometheus.CounterOpts{Name: "promtail_config_reload_success_total", Help: "Number of reload success times."})
	m.reloadFail = prometheus.NewCounter(prometheus.CounterOpts{Name: "promtail_config_reload_fail_total", Help: "Number of reload fail times."})
	m.rotations = prometheus.NewCounter(prometheus.CounterOpts{Name: "ledgerlog_agent_file_rotations_total", Help: "Rotations (rename or delete and re-create) followed."})
	m.truncations = prometheus.NewCounter(prometheus.CounterOpts{Name: "ledgerlog_agent_file_truncations_total", Help: "Truncations (copytruncate) detected."})
	m.truncatedLines = prometheus.NewCounter(prometheus.CounterOpts{Name: "ledgerlog_agent_lines_cut_total", Help: "Lines cut at the tailer's hard line limit."})
	m.bufferBytes = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ledgerlog_agent_disk_buffer_bytes", Help: "Bytes held in a client's disk buffer."}, []string{"host"})
	m.syslogEntries = prometheus.NewCounter(prometheus.CounterOpts{Name: "promtail_syslog_target_entries_total", Help: "Total number of successful entries sent to the syslog target."})
	m.syslogErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "promtail_syslog_target_parsing_errors_total", Help: "Total number of parsing errors while receiving syslog messages."})
	m.pushEntries = prometheus.NewCounter(prometheus.CounterOpts{Name: "ledgerlog_agent_push_target_entries_total", Help: "Entries received by loki_push_api targets."})
	for _, c := range []prometheus.Collector{m.readBytes, m.fileBytes, m.readLines, m.filesActive, m.targetsActive, m.targetsFailed,
		m.encodedBytes, m.sentBytes, m.sentEntries, m.droppedBytes, m.droppedEntries, m.mutatedEntries, m.mutatedBytes,
		m.requestSeconds, m.batchRetries, m.streamLag, m.reloadSuccess, m.reloadFail, m.rotations, m.truncations,
		m.truncatedLines, m.bufferBytes, m.syslogEntries, m.syslogErrors, m.pushEntries} {
		f(c)
	}
	return m
}

// ReloadSucceeded counts a successful config reload.
func (m *Metrics) ReloadSucceeded() { m.reloadSuccess.Inc() }

// ReloadFailed counts a failed config reload.
func (m *Metrics) ReloadFailed() { m.reloadFail.Inc() }

package wal

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Values of the kind label of ledgerlog_wal_corruptions_total.
const (
	kindTornTail       = "torn_tail"       // interrupted write at the end of the last segment, truncated
	kindSegment        = "segment"         // damaged frame or header in a segment, rest of it skipped
	kindCheckpoint     = "checkpoint"      // damaged frame or header in a checkpoint segment
	kindMissingSegment = "missing_segment" // gap in the segment sequence
)

// metrics are the WAL's Prometheus metrics. Names follow Loki's ingester WAL
// where Loki has the same metric.
type metrics struct {
	recordsLogged  prometheus.Counter
	bytesLogged    prometheus.Counter
	appends        prometheus.Counter
	groupCommits   prometheus.Counter
	fsyncDuration  prometheus.Histogram
	diskFull       prometheus.Counter
	segmentCurrent prometheus.Gauge
	corruptions    *prometheus.CounterVec

	checkpointDuration        prometheus.Histogram
	checkpointCreations       prometheus.Counter
	checkpointCreationsFailed prometheus.Counter
	checkpointDeletions       prometheus.Counter
	checkpointDeletionsFailed prometheus.Counter
	checkpointBytes           prometheus.Counter

	reg        prometheus.Registerer
	collectors []prometheus.Collector
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		recordsLogged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loki_ingester_wal_records_logged_total",
			Help: "Total number of WAL records logged.",
		}),
		bytesLogged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loki_ingester_wal_logged_bytes_total",
			Help: "Total number of bytes written to disk for WAL records, framing included.",
		}),
		appends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledgerlog_wal_appends_total",
			Help: "Total number of WAL append calls (batches) written.",
		}),
		groupCommits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledgerlog_wal_group_commits_total",
			Help: "Total number of WAL writes; each carries the batches of all appenders that were waiting.",
		}),
		fsyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "loki_ingester_wal_fsync_duration_seconds",
			Help:    "Duration of WAL fsync (fdatasync) calls.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 15), // 100µs … 1.6s
		}),
		diskFull: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loki_ingester_wal_disk_full_failures_total",
			Help: "Total number of WAL writes that failed because the disk was full.",
		}),
		segmentCurrent: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loki_ingester_wal_segment_current",
			Help: "Index of the WAL segment being written.",
		}),
		corruptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledgerlog_wal_corruptions_total",
			Help: "Total number of WAL corruptions found, by kind: torn_tail (truncated on open), segment and checkpoint (rest of the file skipped), missing_segment.",
		}, []string{"kind"}),
		checkpointDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "loki_ingester_checkpoint_duration_seconds",
			Help:    "Time taken to write a WAL checkpoint, fill included.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14), // 10ms … 82s
		}),
		checkpointCreations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loki_ingester_checkpoint_creations_total",
			Help: "Total number of WAL checkpoints attempted.",
		}),
		checkpointCreationsFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loki_ingester_checkpoint_creations_failed_total",
			Help: "Total number of WAL checkpoints that failed.",
		}),
		checkpointDeletions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loki_ingester_checkpoint_deletions_total",
			Help: "Total number of old checkpoints and segments deleted after a checkpoint.",
		}),
		checkpointDeletionsFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loki_ingester_checkpoint_deletions_failed_total",
			Help: "Total number of old checkpoints and segments that could not be deleted.",
		}),
		checkpointBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loki_ingester_checkpoint_logged_bytes_total",
			Help: "Total number of bytes written to disk for checkpoints.",
		}),
	}
	for _, k := range []string{kindTornTail, kindSegment, kindCheckpoint, kindMissingSegment} {
		m.corruptions.WithLabelValues(k)
	}
	m.collectors = []prometheus.Collector{
		m.recordsLogged, m.bytesLogged, m.appends, m.groupCommits, m.fsyncDuration, m.diskFull,
		m.segmentCurrent, m.corruptions, m.checkpointDuration, m.checkpointCreations,
		m.checkpointCreationsFailed, m.checkpointDeletions, m.checkpointDeletionsFailed, m.checkpointBytes,
	}
	if reg == nil {
		return m, nil
	}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, done := range m.collectors[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("register wal metrics: %w", err)
		}
	}
	m.reg = reg
	return m, nil
}

// unregister removes the metrics from the registry, so that the WAL can be
// reopened with the same registry.
func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
	m.reg = nil
}

// isDiskFull reports whether err is the file system saying it is full.
func isDiskFull(err error) bool { return errors.Is(err, errNoSpace) }

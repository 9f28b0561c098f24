package ingest

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are Loki's push metrics, under Loki's names so that existing
// dashboards and alerts work.
type metrics struct {
	discardedSamples *prometheus.CounterVec // reason, tenant
	discardedBytes   *prometheus.CounterVec // reason, tenant
	mutatedSamples   *prometheus.CounterVec // reason, tenant
	mutatedBytes     *prometheus.CounterVec // reason, tenant
	bytesReceived    *prometheus.CounterVec // tenant
	linesReceived    *prometheus.CounterVec // tenant
	metadataReceived *prometheus.CounterVec // tenant
}

func newMetrics(reg prometheus.Registerer) *metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "loki", Name: name, Help: help}, labels)
		if reg == nil {
			return c
		}
		if err := reg.Register(c); err != nil {
			// A second validator on the same registry shares the counters.
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
					return existing
				}
			}
		}
		return c
	}
	return &metrics{
		discardedSamples: counter("discarded_samples_total", "The total number of samples that were discarded.", "reason", "tenant"),
		discardedBytes:   counter("discarded_bytes_total", "The total number of bytes that were discarded.", "reason", "tenant"),
		mutatedSamples:   counter("mutated_samples_total", "The total number of samples that have been mutated.", "reason", "tenant"),
		mutatedBytes:     counter("mutated_bytes_total", "The total number of bytes that have been mutated.", "reason", "tenant"),
		bytesReceived: counter("distributor_bytes_received_total",
			"The total number of uncompressed bytes received per tenant. Includes structured metadata bytes.", "tenant"),
		linesReceived: counter("distributor_lines_received_total", "The total number of lines received per tenant", "tenant"),
		metadataReceived: counter("distributor_structured_metadata_bytes_received_total",
			"The total number of uncompressed bytes received per tenant for entries' structured metadata", "tenant"),
	}
}

// tally accumulates discards by reason during one Validate call so that the
// counters are touched once per reason.
type tally struct {
	reasons []string
	samples []int
	bytes   []int
}

func (t *tally) add(reason string, samples, bytes int) {
	for i, r := range t.reasons {
		if r == reason {
			t.samples[i] += samples
			t.bytes[i] += bytes
			return
		}
	}
	t.reasons = append(t.reasons, reason)
	t.samples = append(t.samples, samples)
	t.bytes = append(t.bytes, bytes)
}

func (t *tally) flush(samples, bytes *prometheus.CounterVec, tenantID string) {
	for i, r := range t.reasons {
		samples.WithLabelValues(r, tenantID).Add(float64(t.samples[i]))
		bytes.WithLabelValues(r, tenantID).Add(float64(t.bytes[i]))
	}
}

package demo

import (
	"math"
	"math/rand/v2"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus metrics the seed's Rust services export, with
// the same service and environment labels as their log streams. The
// transaction histogram carries the trace_id of the log line it came from as
// an exemplar, so a latency spike leads to the lines behind it.
type Metrics struct {
	transactions *prometheus.CounterVec   // financial_transactions_total{service,environment,status}
	duration     *prometheus.HistogramVec // financial_transaction_duration_seconds{service,environment}
	balance      *prometheus.GaugeVec     // account_balance_total{service,environment,currency}
	connections  *prometheus.GaugeVec     // fintech_active_connections{service,environment}

	// conns is the random walk behind fintech_active_connections; only
	// Observe touches it (one goroutine).
	conns map[string]float64
	r     *rand.Rand
}

// NewMetrics registers the four metric families on reg.
func NewMetrics(reg prometheus.Registerer, seed uint64) (*Metrics, error) {
	m := &Metrics{
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "financial_transactions_total",
			Help: "Total number of financial transactions processed.",
		}, []string{"service", "environment", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "financial_transaction_duration_seconds",
			Help:    "Transaction processing duration in seconds.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"service", "environment"}),
		balance: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "account_balance_total",
			Help: "Current pooled account balance by currency.",
		}, []string{"service", "environment", "currency"}),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fintech_active_connections",
			Help: "Number of active client connections.",
		}, []string{"service", "environment"}),
		conns: map[string]float64{},
		r:     rand.New(rand.NewPCG(seed, 0x51ed2701)),
	}
	for _, c := range []prometheus.Collector{m.transactions, m.duration, m.balance, m.connections} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Observe updates the metrics from one record under scenario s. It must be
// called from one goroutine at a time.
func (m *Metrics) Observe(rec *Record, env string, s Scenario) {
	if rec.Txn != nil {
		m.transactions.WithLabelValues(rec.Service, env, rec.Txn.Status).Inc()
		h := m.duration.WithLabelValues(rec.Service, env)
		if rec.TraceID != "" {
			h.(prometheus.ExemplarObserver).ObserveWithExemplar(rec.Txn.Seconds, prometheus.Labels{"trace_id": rec.TraceID})
		} else {
			h.Observe(rec.Txn.Seconds)
		}
	}
	if rec.Balance != nil {
		m.balance.WithLabelValues(rec.Service, env, rec.Balance.Currency).Set(rec.Balance.Amount)
	}
	if rec.Service == "payment-gateway" || rec.Service == "auth" {
		// Connections drift around 40 (gateway) / 15 (auth); during an
		// error spike timed-out requests hold theirs and the gateway's
		// count climbs towards 200.
		target := 40.0
		if rec.Service == "auth" {
			target = 15
		} else if s == ErrorSpike {
			target = 200
		}
		c, ok := m.conns[rec.Service]
		if !ok {
			c = target
		}
		c += (target-c)*0.02 + m.r.NormFloat64()
		c = math.Max(0, c)
		m.conns[rec.Service] = c
		m.connections.WithLabelValues(rec.Service, env).Set(math.Round(c))
	}
}

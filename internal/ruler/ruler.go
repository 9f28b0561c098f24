// Package ruler owns Ledgerlog's Loki-compatible ruler: Prometheus-format
// rule files whose expressions are LogQL metric queries, stored per tenant
// on local disk (<dir>/<tenant>/<namespace>.yaml), evaluated group by group
// on schedule, with Prometheus' alert state machine (inactive → pending →
// firing → resolved, `for`, `keep_firing_for`) persisted across restarts,
// notifications to Alertmanager over its v2 API, and recording-rule results
// remote-written to Prometheus.
//
// The ruler does not know the query engine: it depends on a QueryFunc, the
// way Prometheus' rules manager does, and the application wires that to
// the engine.
package ruler

import (
	"context"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// Sample is one element of an instant vector.
type Sample struct {
	Labels model.Labels
	Value  float64
}

// Vector is an instant query result.
type Vector []Sample

// QueryFunc evaluates a LogQL metric query for one tenant at one instant.
// A scalar result is a Vector of one sample with empty labels. It is called
// from several goroutines at once (one per rule group) and may block for
// the query's duration; ctx carries the evaluation's deadline.
type QueryFunc func(ctx context.Context, tenant, query string, ts time.Time) (Vector, error)

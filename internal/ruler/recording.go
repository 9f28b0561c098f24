package ruler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// recordingRule evaluates an expression into a new series named Record.
// Immutable fields come first; mu guards the rest.
type recordingRule struct {
	def    Rule
	labels model.Labels

	mu             sync.Mutex
	health         string
	lastError      error
	lastEvaluation time.Time
	evalDuration   time.Duration
}

func newRecordingRule(def Rule) *recordingRule {
	return &recordingRule{def: def, labels: labels.FromMap(def.Labels), health: "unknown"}
}

var errDuplicateSeries = errors.New("vector contains metrics with the same labelset after applying rule labels")

// eval returns the samples to record: the query result renamed, with the
// rule's labels set.
func (r *recordingRule) eval(ctx context.Context, ts time.Time, ec evalContext) (Vector, error) {
	res, err := ec.query(ctx, ec.tenant, r.def.Expr, ts)
	if err == nil {
		out := make(Vector, 0, len(res))
		seen := make(map[uint64]struct{}, len(res))
		for _, s := range res {
			lb := labels.NewBuilder(s.Labels)
			lb.Set(labels.MetricName, r.def.Record)
			r.labels.Range(func(l labels.Label) { lb.Set(l.Name, l.Value) })
			ls := lb.Labels()
			h := ls.Hash()
			if _, dup := seen[h]; dup {
				err = errDuplicateSeries
				break
			}
			seen[h] = struct{}{}
			out = append(out, Sample{Labels: ls, Value: s.Value})
		}
		if err == nil && ec.limit > 0 && len(out) > ec.limit {
			err = fmt.Errorf("exceeded limit of %d with %d series", ec.limit, len(out))
		}
		if err == nil {
			res = out
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.health, r.lastError = "err", err
		return nil, err
	}
	r.health, r.lastError = "ok", nil
	return res, nil
}

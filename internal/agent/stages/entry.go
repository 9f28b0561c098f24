package stages

import (
	"maps"
	"time"

	"github.com/prometheus/common/model"
)

// TenantLabel is Promtail's reserved label for the per-entry tenant. A stage
// that sets it (labels, static_labels) sets the entry's tenant, as the
// Promtail client did: the pipeline moves it from Labels to Entry.Tenant.
const TenantLabel = "__tenant_id__"

// ReservedPrefix starts the extracted keys the agent uses for its own
// bookkeeping (e.g. the file position an entry acknowledges). Stages pass
// them through; a multiline block carries those of its newest line.
const ReservedPrefix = "__ledgerlog_"

// Entry is what flows through a pipeline, as in Promtail.
//
// Ownership: an Entry handed to Process or sent into Run belongs to the
// pipeline from then on; stages modify its maps in place. The entries the
// pipeline returns belong to the caller. Labels, Extracted and
// StructuredMetadata may be nil on input; the pipeline allocates them.
type Entry struct {
	// Labels are the stream labels. Stages add and remove labels here.
	Labels model.LabelSet
	// Extracted is the per-entry scratch map parsing stages fill and action
	// stages read. On entry to the pipeline it is seeded with Labels (as
	// strings), as Promtail does, so stages can read target labels. Values
	// are string, float64, bool or nil (JSON null / no JMESPath match).
	Extracted map[string]any
	// Timestamp is the entry's time: read time unless a stage sets it.
	Timestamp time.Time
	// Line is the log line.
	Line string
	// StructuredMetadata is per-entry metadata sent with the line (Loki
	// structured metadata); it is not part of the stream identity.
	StructuredMetadata map[string]string
	// Tenant is the tenant the entry is pushed as; "" means the client's
	// default tenant. Set by the tenant stage.
	Tenant string
}

// clone returns a copy of e whose maps are not shared with e.
func (e *Entry) clone() Entry {
	c := *e
	c.Labels = maps.Clone(e.Labels)
	c.Extracted = maps.Clone(e.Extracted)
	c.StructuredMetadata = maps.Clone(e.StructuredMetadata)
	return c
}

// prepare allocates nil maps and seeds Extracted with the labels.
func (e *Entry) prepare() {
	if e.Labels == nil {
		e.Labels = model.LabelSet{}
	}
	if e.Extracted == nil {
		e.Extracted = make(map[string]any, len(e.Labels)+8)
	}
	for k, v := range e.Labels {
		e.Extracted[string(k)] = string(v)
	}
}

// finish applies what the Promtail client did on its side: a
// __tenant_id__ label becomes the entry's tenant.
func (e *Entry) finish() {
	if t, ok := e.Labels[TenantLabel]; ok {
		if t != "" {
			e.Tenant = string(t)
		}
		delete(e.Labels, TenantLabel)
	}
}

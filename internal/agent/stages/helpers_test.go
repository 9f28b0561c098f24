package stages

import (
	"maps"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ts0 is the read time given to test entries.
var ts0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func stageNodes(t testing.TB, text string) []yaml.Node {
	t.Helper()
	var nodes []yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(text), &nodes), "stage YAML")
	return nodes
}

func newTestPipeline(t testing.TB, text string, opts Options) *Pipeline {
	t.Helper()
	p, err := NewPipeline(stageNodes(t, text), opts)
	require.NoError(t, err)
	return p
}

// processAll feeds entries through Process and flushes at the end.
func processAll(p *Pipeline, in ...Entry) []Entry {
	var out []Entry
	for _, e := range in {
		out = append(out, p.Process(e)...)
	}
	return append(out, p.Flush()...)
}

func ls(kv ...string) model.LabelSet {
	out := model.LabelSet{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[model.LabelName(kv[i])] = model.LabelValue(kv[i+1])
	}
	return out
}

func entry(line string, labels model.LabelSet) Entry {
	return Entry{Labels: labels, Timestamp: ts0, Line: line}
}

// requireEntries compares everything but Extracted, which is compared only
// where want sets it (as the complete map).
func requireEntries(t testing.TB, want, got []Entry) {
	t.Helper()
	require.Len(t, got, len(want), "entries: %+v", got)
	for i := range want {
		w, g := want[i], got[i]
		if w.Labels == nil {
			w.Labels = model.LabelSet{}
		}
		require.Equal(t, w.Labels, g.Labels, "entry %d labels", i)
		require.Equal(t, w.Line, g.Line, "entry %d line", i)
		require.True(t, w.Timestamp.Equal(g.Timestamp), "entry %d timestamp: want %v got %v", i, w.Timestamp, g.Timestamp)
		require.Equal(t, nilIfEmpty(w.StructuredMetadata), nilIfEmpty(g.StructuredMetadata), "entry %d structured metadata", i)
		require.Equal(t, w.Tenant, g.Tenant, "entry %d tenant", i)
		if w.Extracted != nil {
			require.Equal(t, w.Extracted, g.Extracted, "entry %d extracted", i)
		}
	}
}

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

// extractedWith is the seeded Extracted map (labels as strings) plus kv.
func extractedWith(labels model.LabelSet, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range labels {
		out[string(k)] = string(v)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

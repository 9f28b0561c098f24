package stages

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// tracingLines reads the lines of testdata/tracing.ndjson, 40 lines made by
// the bench generator (tracing-subscriber JSON of Rust FinTech services).
func tracingLines(t testing.TB) []string {
	t.Helper()
	f, err := os.Open("testdata/tracing.ndjson")
	require.NoError(t, err)
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct {
			Line string `json:"line"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec))
		lines = append(lines, rec.Line)
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, lines)
	return lines
}

func loadPipeline(t testing.TB, file string, opts Options) *Pipeline {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("testdata", file))
	require.NoError(t, err)
	return newTestPipeline(t, string(text), opts)
}

// seedTargetLabels are the labels Promtail gives a file from the seed's
// static_configs (job, environment) plus the file target's filename.
func seedTargetLabels() Entry {
	return Entry{Labels: ls("job", "rust-fintech", "environment", "production", "filename", "/var/log/fintech/payments.log"), Timestamp: ts0}
}

type goldenEntry struct {
	Labels    string `json:"labels"`
	Timestamp string `json:"ts"`
	Line      string `json:"line"`
}

func checkGolden(t *testing.T, name string, out []Entry) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, e := range out {
		require.NoError(t, enc.Encode(goldenEntry{Labels: e.Labels.String(), Timestamp: e.Timestamp.Format(time.RFC3339Nano), Line: e.Line}))
	}
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file (run with -update to create)")
	require.Equal(t, string(want), buf.String())
}

// TestRustSeedConfig runs the seed's "Promtail Configuration for Rust Logs"
// unchanged over real tracing JSON. Its json stage reads top-level message
// and event, but tracing JSON nests them under fields, so — exactly as with
// Promtail — message and event are nil: the labels stage sets no event
// label, and the template renders the missing key as "<no value>", which the
// output stage makes the line of every entry.
func TestRustSeedConfig(t *testing.T) {
	p := loadPipeline(t, "rust_seed_pipeline.yaml", Options{})
	lines := tracingLines(t)
	var out []Entry
	for _, l := range lines {
		e := seedTargetLabels()
		e.Line = l
		out = append(out, p.Process(e)...)
	}
	out = append(out, p.Flush()...)
	require.Len(t, out, len(lines))
	for i, e := range out {
		var src struct {
			Timestamp string `json:"timestamp"`
			Level     string `json:"level"`
		}
		require.NoError(t, json.Unmarshal([]byte(lines[i]), &src))
		require.Equal(t, "<no value>", e.Line, "line %d", i)
		require.Equal(t, ls("job", "rust-fintech", "environment", "production",
			"filename", "/var/log/fintech/payments.log", "level", src.Level), e.Labels, "line %d: no event label", i)
		wantTS, err := time.Parse(time.RFC3339Nano, src.Timestamp)
		require.NoError(t, err)
		require.True(t, wantTS.Equal(e.Timestamp), "line %d timestamp", i)
		require.Contains(t, e.Extracted, "event")
		require.Nil(t, e.Extracted["event"])
		require.Nil(t, e.Extracted["message"])
	}
	checkGolden(t, "rust_seed.golden", out)

	// Warnings name the json stage, both keys and where they are read.
	w := strings.Join(p.Warnings(), "\n")
	require.Contains(t, w, `stage 1 (json): JMESPath "message" for key "message" reads the top-level field only`)
	require.Contains(t, w, `write message: fields.message; read by stage 4 (template)`)
	require.Contains(t, w, `JMESPath "event" for key "event"`)
	require.Contains(t, w, `write event: fields.event; read by stage 2 (labels)`)
	require.NotContains(t, w, `"level"`, "level is top-level in tracing JSON")
	require.NotContains(t, w, `"timestamp"`)
}

// TestRustTracingConfig runs the corrected config from docs/agent-stages.md.
func TestRustTracingConfig(t *testing.T) {
	p := loadPipeline(t, "rust_tracing_pipeline.yaml", Options{})
	require.Empty(t, p.Warnings())
	lines := tracingLines(t)
	var out []Entry
	for _, l := range lines {
		e := seedTargetLabels()
		e.Line = l
		out = append(out, p.Process(e)...)
	}
	require.Len(t, out, len(lines))
	for i, e := range out {
		var src struct {
			Fields struct {
				Message string `json:"message"`
				Event   string `json:"event"`
			} `json:"fields"`
		}
		require.NoError(t, json.Unmarshal([]byte(lines[i]), &src))
		require.Equal(t, src.Fields.Message, e.Line)
		require.Equal(t, src.Fields.Event, string(e.Labels["event"]))
	}
	checkGolden(t, "rust_tracing.golden", out)
}

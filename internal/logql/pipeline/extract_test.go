package pipeline

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	lql "github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/model"
)

// mustExtractor parses a range aggregation and builds its extractor with
// the options the engine would derive from it.
func mustExtractor(t testing.TB, query string, opts ExtractorOptions) *SampleExtractor {
	t.Helper()
	e, err := lql.ParseExpr(query)
	require.NoError(t, err, query)
	var r *lql.RangeAggregationExpr
	lql.Walk(e, func(x lql.Expr) bool {
		if ra, ok := x.(*lql.RangeAggregationExpr); ok && r == nil {
			r = ra
		}
		return true
	})
	require.NotNil(t, r, query)
	p, err := New(r.Left.Log.Stages)
	require.NoError(t, err)
	if opts.Grouping == nil {
		opts.Grouping = r.Grouping
	}
	opts.Bytes = opts.Bytes || r.Op == lql.RangeBytes || r.Op == lql.RangeBytesRate
	ex, err := NewSampleExtractor(p, r.Left.Unwrap, opts)
	require.NoError(t, err)
	return ex
}

func TestSampleExtractor(t *testing.T) {
	stream := `{app="a", level="info"}`
	f := func(query string, opts ExtractorOptions, line string, wantValue float64, wantLabels string) {
		t.Helper()
		sp := mustExtractor(t, query, opts).ForStream(mustLabels(t, stream))
		for range 2 {
			v, ls, ok := sp.Process(1, []byte(line), model.EmptyLabels())
			if wantLabels == dropped {
				require.False(t, ok, "%s: want no sample, got %v %s", query, v, ls)
				continue
			}
			require.True(t, ok, query)
			require.Equal(t, wantValue, v, query)
			require.Equal(t, wantLabels, ls.String(), query)
		}
	}
	by := func(names ...string) ExtractorOptions {
		return ExtractorOptions{Grouping: &lql.Grouping{Labels: names}}
	}
	// Counting and bytes (LQ-R1, LQ-R3): the processed line's length.
	f(`count_over_time({app="a"} |= "x" [1m])`, ExtractorOptions{}, "x y", 1, `{app="a", level="info"}`)
	f(`count_over_time({app="a"} |= "z" [1m])`, ExtractorOptions{}, "x y", 0, dropped)
	f(`bytes_over_time({app="a"} | logfmt | line_format "{{.k}}" [1m])`, ExtractorOptions{}, "k=abc", 3, `{app="a", k="abc", level="info"}`)
	f(`count_over_time({app="a"} | json [1m])`, by("k"), `{"k":"v","other":"w"}`, 1, `{k="v"}`)
	f(`count_over_time({app="a"} | json [1m])`, ExtractorOptions{Grouping: &lql.Grouping{Without: true, Labels: []string{"other", "app"}}}, `{"k":"v","other":"w"}`, 1, `{k="v", level="info"}`)
	f(`count_over_time({app="a"} | json [1m])`, ExtractorOptions{NoLabels: true}, `{"k":"v"}`, 1, `{}`)
	// Unwrap (LQ-R9): the unwrapped label is dropped from the series.
	f(`sum_over_time({app="a"} | logfmt | unwrap latency [1m])`, ExtractorOptions{}, "latency=2.5 path=/x", 2.5, `{app="a", level="info", path="/x"}`)
	f(`sum_over_time({app="a"} | logfmt | unwrap duration(latency) [1m])`, ExtractorOptions{}, "latency=250ms", 0.25, `{app="a", level="info"}`)
	f(`sum_over_time({app="a"} | logfmt | unwrap duration_seconds(latency) [1m])`, ExtractorOptions{}, "latency=1m", 60, `{app="a", level="info"}`)
	f(`sum_over_time({app="a"} | logfmt | unwrap bytes(size) [1m])`, ExtractorOptions{}, "size=1.5KiB", 1536, `{app="a", level="info"}`)
	f(`avg_over_time({app="a"} | logfmt | unwrap latency [1m]) by (path)`, ExtractorOptions{}, "latency=3 path=/x", 3, `{path="/x"}`)
	// A line without the label yields no sample and no error.
	f(`sum_over_time({app="a"} | logfmt | unwrap latency [1m])`, ExtractorOptions{}, "path=/x", 0, dropped)
	// Conversion errors: SampleExtractionErr with every label; post filters
	// may drop them.
	f(`sum_over_time({app="a"} | logfmt | unwrap latency [1m])`, by("path"), "latency=fast path=/x", 0,
		`{__error__="SampleExtractionErr", __error_details__="strconv.ParseFloat: parsing \"fast\": invalid syntax", app="a", latency="fast", level="info", path="/x"}`)
	f(`sum_over_time({app="a"} | logfmt | unwrap latency | __error__="" [1m])`, ExtractorOptions{}, "latency=fast", 0, dropped)
	f(`sum_over_time({app="a"} | logfmt | unwrap latency | path="/x" [1m])`, ExtractorOptions{}, "latency=1 path=/y", 0, dropped)
	// Parser errors reach the sample, even with NoLabels.
	f(`count_over_time({app="a"} | json | __error__!="" [1m])`, ExtractorOptions{NoLabels: true}, `nope`, 1,
		`{__error__="JSONParserErr", __error_details__="Value looks like object, but can't find closing '}' symbol", app="a", level="info"}`)
}

func TestHints(t *testing.T) {
	f := func(query string, opts ExtractorOptions, want []string) {
		t.Helper()
		ex := mustExtractor(t, query, opts)
		h := ex.p.hints
		if want == nil {
			require.True(t, h.all(), "%s: hints %+v", query, h)
			return
		}
		require.False(t, h.all(), query)
		require.ElementsMatch(t, want, h.required, query)
	}
	by := func(names ...string) ExtractorOptions {
		return ExtractorOptions{Grouping: &lql.Grouping{Labels: names}}
	}
	f(`rate({a="b"} | json [1m])`, by("fields_currency"), []string{"fields_currency"})
	f(`rate({a="b"} | json | fields_amount > 10000 [1m])`, by("fields_currency"), []string{"fields_amount", "fields_currency"})
	f(`rate({a="b"} | json | level_extracted="ERROR" [1m])`, by("x"), []string{"level_extracted", "level", "x"})
	f(`rate({a="b"} | json [1m])`, ExtractorOptions{}, nil)
	f(`rate({a="b"} | json [1m])`, ExtractorOptions{Grouping: &lql.Grouping{Without: true, Labels: []string{"x"}}}, nil)
	f(`rate({a="b"} | json | line_format "{{.a}}" [1m])`, by("b"), []string{"a", "b"})
	f(`rate({a="b"} | json | line_format "{{ range $k, $v := . }}{{$k}}{{end}}" [1m])`, by("b"), nil)
	f(`sum_over_time({a="b"} | json | unwrap x [1m])`, ExtractorOptions{}, nil)
	f(`avg_over_time({a="b"} | json | unwrap x | y="1" [1m]) by (z)`, ExtractorOptions{}, []string{"x", "y", "z"})
	f(`rate({a="b"} | json [1m])`, ExtractorOptions{NoLabels: true}, []string{})
	f(`rate({a="b"} | json | s > 1 [1m])`, ExtractorOptions{NoLabels: true}, []string{"s"})
}

// tracingEntry is one line of the bench generator's dataset.
type tracingEntry struct {
	Labels string `json:"labels"`
	TS     int64  `json:"ts"`
	Line   string `json:"line"`
}

func loadTracing(t testing.TB) []tracingEntry {
	t.Helper()
	fh, err := os.Open("testdata/tracing.ndjson")
	require.NoError(t, err)
	defer fh.Close()
	var out []tracingEntry
	sc := bufio.NewScanner(fh)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e tracingEntry
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e))
		out = append(out, e)
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, out)
	return out
}

// TestTracingJSON checks `| json` on Rust tracing JSON lines (the bench
// dataset's shape): fields_* and span_* names, and the JSON level renamed
// level_extracted because the stream has a level label.
func TestTracingJSON(t *testing.T) {
	p := mustPipeline(t, `| json`)
	sawAmount := false
	for _, e := range loadTracing(t) {
		sp := p.ForStream(mustLabels(t, e.Labels))
		_, l, keep := sp.Process(e.TS, []byte(e.Line), model.EmptyLabels())
		require.True(t, keep)
		require.Empty(t, l.Err(), e.Line)
		var doc map[string]any
		require.NoError(t, json.Unmarshal([]byte(e.Line), &doc))
		lv, _ := l.Get("level_extracted")
		require.Equal(t, doc["level"], lv)
		stream, _ := l.Get("level")
		require.Equal(t, mustLabels(t, e.Labels).Get("level"), stream)
		span := doc["span"].(map[string]any)
		name, _ := l.Get("span_name")
		require.Equal(t, span["name"], name)
		fields := doc["fields"].(map[string]any)
		for k, v := range fields {
			got, ok := l.Get("fields_" + k)
			require.True(t, ok, "fields_%s in %s", k, e.Line)
			switch v := v.(type) {
			case string:
				require.Equal(t, v, got)
			case float64:
				require.NotEmpty(t, got)
			}
		}
		if cur, ok := fields["currency"]; ok {
			got, _ := l.Get("fields_currency")
			require.Equal(t, cur, got)
			sawAmount = true
		}
		thread, _ := l.Get("threadId")
		require.Equal(t, doc["threadId"], thread)
	}
	require.True(t, sawAmount)

	// The mission query shape: only the needed labels are extracted.
	ex := mustExtractor(t, `sum by (fields_currency) (rate({service="payment-gateway"} | json | fields_amount > 1000 [1m]))`,
		ExtractorOptions{Grouping: &lql.Grouping{Labels: []string{"fields_currency"}}})
	n := 0
	for _, e := range loadTracing(t) {
		sp := ex.ForStream(mustLabels(t, e.Labels))
		v, ls, ok := sp.Process(e.TS, []byte(e.Line), model.EmptyLabels())
		var doc struct {
			Fields struct {
				Amount   json.Number `json:"amount"`
				Currency string      `json:"currency"`
			} `json:"fields"`
		}
		require.NoError(t, json.Unmarshal([]byte(e.Line), &doc))
		amount, _ := doc.Fields.Amount.Float64()
		if !ok {
			require.False(t, amount > 1000, e.Line)
			continue
		}
		n++
		require.Equal(t, 1.0, v)
		require.Greater(t, amount, 1000.0)
		require.Equal(t, `{fields_currency="`+doc.Fields.Currency+`"}`, ls.String())
	}
	require.Positive(t, n)
}

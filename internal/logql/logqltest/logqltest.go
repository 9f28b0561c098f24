// Package logqltest owns the LogQL engine's conformance suite: a small
// script language in the style of Prometheus' promqltest that loads log
// streams into a real storage.DB and checks the engine's answers.
//
// A script is a sequence of commands separated by blank lines; `#` starts a
// comment line. Times are durations relative to the script's base time
// (2025-01-01T00:00:00Z), written like `90s` or `1h30m` (`-5m` is allowed).
//
//	load [tenant=<id>]
//	  <labels> <time> <line> [<structured metadata labels>]
//	  …
//
// adds entries: `{app="api"} 30s "GET /x 200" {trace_id="abc"}`. The line
// is a Go double-quoted or backtick string. Entries are pushed with
// unordered writes (tenant "fake" unless given). `load validate` first
// passes them through the distributor's validation (ingest.Validator), which
// adds service_name and detected_level as a push over HTTP would.
//
//	flush
//
// cuts and flushes the head into blocks, so later evaluations read blocks.
//
//	limits <key>=<value> …
//
// sets tenant limits for the following evaluations (max_query_series,
// max_entries_limit_per_query, max_query_length, max_query_range,
// require_selective_matcher, max_query_bytes_read, max_query_lookback,
// query_timeout, split_queries_by_interval).
//
//	now <t>
//
// sets the engine's clock (for max_query_lookback); the real clock until
// then.
//
//	format <query>
//
// checks format_query's pretty form of a query: the following lines, with
// the first one's indentation removed from all (`format_fail` expects a
// parse error, as eval_fail does).
//
//	eval instant at <t> [opts] <query>
//	eval range from <t> to <t> step <d> [opts] <query>
//	eval logs from <t> to <t> [opts] <query>
//
// evaluate a query; opts are limit=<n>, direction=forward|backward,
// interval=<d>, tenants=<a|b>. The lines that follow are the expected
// answer, in order:
//
//	scalar <value>                      a scalar
//	<labels> <value>                    one vector element
//	<labels> <v0> <v1> …                a matrix series, one value per step, `_` where absent
//	<stream labels> <t> <line> [md=<labels>] [parsed=<labels>]   a log entry
//	(empty)                             no result
//
// `eval_fail …` instead expects an error; an optional next line
// `error <text>` gives the exact message (`error_contains <text>` a part).
package logqltest

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/ledgerlog/ledgerlog/internal/ingest"
	"github.com/ledgerlog/ledgerlog/internal/logql/engine"
	"github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage"
	"github.com/ledgerlog/ledgerlog/internal/storage/head"
	"github.com/ledgerlog/ledgerlog/internal/tenant"
	"github.com/ledgerlog/ledgerlog/internal/units"
)

// Base is the time that script times are relative to.
var Base = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// RunFile runs the script in path against a fresh store.
func RunFile(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	Run(t, string(b))
}

// Config changes how a script runs.
type Config struct {
	// SplitCheck evaluates every metric range query of the script (eval
	// and eval_fail alike) once in a single pass and once split at each of
	// several intervals (split_queries_by_interval, forced), and requires
	// bit-identical answers or identical errors; the expectations of the
	// script are checked as usual.
	SplitCheck bool
}

// Run runs a script against a fresh store in t.TempDir.
func Run(t *testing.T, script string) {
	t.Helper()
	RunWith(t, script, Config{})
}

// RunFileWith runs the script in path with cfg.
func RunFileWith(t *testing.T, path string, cfg Config) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	RunWith(t, string(b), cfg)
}

// RunWith runs a script against a fresh store with cfg.
func RunWith(t *testing.T, script string, cfg Config) {
	t.Helper()
	ctx := context.Background()
	db, err := storage.Open(ctx, storage.Options{Bucket: objstore.NewInMemBucket(), BlockWindow: 24 * time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close(ctx) })
	r := &runner{t: t, db: db, limits: tenant.Defaults(), cfg: cfg}
	cmds, err := parseScript(script)
	require.NoError(t, err)
	for _, c := range cmds {
		r.run(c)
	}
	if cfg.SplitCheck && r.splitChecked > 0 {
		require.Positive(t, r.splitRuns, "no metric range query was split")
		t.Logf("%d metric range queries compared split and unsplit, %d of them split", r.splitChecked, r.splitRuns)
	}
}

type command struct {
	line int
	head string
	body []string
	// raw is body with only the first body line's indentation removed
	// from every line (format expectations keep their relative indent).
	raw    []string
	indent string
}

func parseScript(s string) ([]command, error) {
	var out []command
	var cur *command
	for i, raw := range strings.Split(s, "\n") {
		line := strings.TrimRightFunc(raw, unicode.IsSpace)
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if trimmed == "" {
			cur = nil
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur == nil {
				return nil, fmt.Errorf("line %d: indented line outside a command", i+1)
			}
			cur.body = append(cur.body, trimmed)
			if len(cur.raw) == 0 {
				cur.indent = line[:len(line)-len(strings.TrimLeftFunc(line, unicode.IsSpace))]
			}
			cur.raw = append(cur.raw, strings.TrimPrefix(line, cur.indent))
			continue
		}
		out = append(out, command{line: i + 1, head: trimmed})
		cur = &out[len(out)-1]
	}
	return out, nil
}

type runner struct {
	t      *testing.T
	db     *storage.DB
	limits tenant.Limits
	cfg    Config
	now    time.Time // the engine's clock; zero: the real clock
	// splitChecked counts the answered queries compared split and
	// unsplit, splitRuns those that were really split.
	splitChecked, splitRuns int
}

func (r *runner) run(c command) {
	t := r.t
	t.Helper()
	word, rest, _ := strings.Cut(c.head, " ")
	switch word {
	case "load":
		r.load(c, rest)
	case "flush":
		require.NoError(t, r.db.Flush(context.Background(), true), "line %d", c.line)
	case "limits":
		r.setLimits(c, rest)
	case "now":
		ts, err := parseTime(strings.TrimSpace(rest))
		require.NoError(t, err, "line %d", c.line)
		r.now = time.Unix(0, ts)
	case "eval", "eval_fail":
		r.eval(c, word == "eval_fail", rest)
	case "format", "format_fail":
		r.format(c, word == "format_fail", rest)
	default:
		t.Fatalf("line %d: unknown command %q", c.line, word)
	}
}

func (r *runner) load(c command, rest string) {
	t := r.t
	t.Helper()
	tenantID := model.TenantFake
	validate := false
	for _, opt := range strings.Fields(rest) {
		switch {
		case strings.HasPrefix(opt, "tenant="):
			tenantID = strings.TrimPrefix(opt, "tenant=")
		case opt == "validate":
			validate = true
		default:
			t.Fatalf("line %d: unknown load option %q", c.line, opt)
		}
	}
	byLabels := map[string]*model.Stream{}
	var order []string
	for i, l := range c.body {
		ls, rest, err := cutLabels(l)
		require.NoError(t, err, "line %d", c.line+i+1)
		tok, rest := cutToken(rest)
		ts, err := parseTime(tok)
		require.NoError(t, err, "line %d", c.line+i+1)
		line, rest, err := cutString(rest)
		require.NoError(t, err, "line %d", c.line+i+1)
		md := model.EmptyLabels()
		if rest = strings.TrimSpace(rest); rest != "" {
			md, rest, err = cutLabels(rest)
			require.NoError(t, err, "line %d", c.line+i+1)
			require.Empty(t, strings.TrimSpace(rest), "line %d: trailing text", c.line+i+1)
		}
		k := ls.String()
		s := byLabels[k]
		if s == nil {
			s = &model.Stream{Labels: ls}
			byLabels[k] = s
			order = append(order, k)
		}
		s.Entries = append(s.Entries, model.Entry{Timestamp: ts, Line: line, Metadata: md})
	}
	streams := make([]model.Stream, 0, len(order))
	var newest int64
	for _, k := range order {
		streams = append(streams, *byLabels[k])
		for _, e := range byLabels[k].Entries {
			newest = max(newest, e.Timestamp)
		}
	}
	if validate {
		// The distributor's path: service_name discovery, detected_level
		// metadata, limits (with "now" just after the newest entry).
		l := r.limits
		var err error
		streams, err = ingest.NewValidator(nil, nil).Validate(tenantID, &l, &ingest.Request{Streams: streams}, time.Unix(0, newest).Add(time.Minute))
		require.NoError(t, err, "line %d", c.line)
	}
	require.NoError(t, r.db.Push(tenantID, streams, head.Limits{UnorderedWrites: true}), "line %d", c.line)
}

func (r *runner) setLimits(c command, rest string) {
	t := r.t
	t.Helper()
	for _, kv := range strings.Fields(rest) {
		k, v, ok := strings.Cut(kv, "=")
		require.True(t, ok, "line %d: %q is not key=value", c.line, kv)
		var err error
		switch k {
		case "max_query_series":
			r.limits.MaxQuerySeries, err = strconv.Atoi(v)
		case "max_entries_limit_per_query":
			r.limits.MaxEntriesLimitPerQuery, err = strconv.Atoi(v)
		case "max_query_length":
			err = r.limits.MaxQueryLength.Set(v)
		case "max_query_range":
			err = r.limits.MaxQueryRange.Set(v)
		case "require_selective_matcher":
			r.limits.RequireSelectiveMatcher, err = strconv.ParseBool(v)
		case "max_query_bytes_read":
			err = r.limits.MaxQueryBytesRead.Set(v)
		case "max_query_lookback":
			err = r.limits.MaxQueryLookback.Set(v)
		case "query_timeout":
			err = r.limits.QueryTimeout.Set(v)
		case "split_queries_by_interval":
			err = r.limits.SplitQueriesByInterval.Set(v)
		default:
			t.Fatalf("line %d: unknown limit %q", c.line, k)
		}
		require.NoError(t, err, "line %d", c.line)
	}
}

func (r *runner) eval(c command, fail bool, rest string) {
	t := r.t
	t.Helper()
	p, _, err := parseEval(rest)
	require.NoError(t, err, "line %d", c.line)
	eng := engine.New(r.db, tenant.NewOverrides(r.limits), engine.Options{Now: r.clock()})
	res, err := eng.Exec(context.Background(), p)
	where := fmt.Sprintf("line %d: %s", c.line, c.head)
	if r.cfg.SplitCheck && !p.Instant && p.Step > 0 {
		r.checkSplit(p, where)
	}
	if fail {
		require.Error(t, err, where)
		r.checkError(where, c.body, err)
		return
	}
	require.NoError(t, err, where)
	got := Format(res, p)
	want := make([]string, 0, len(c.body))
	for _, b := range c.body {
		want = append(want, normalize(b, p))
	}
	if !equalLines(want, got) {
		t.Errorf("%s\nwant:\n  %s\ngot:\n  %s", where, strings.Join(want, "\n  "), strings.Join(got, "\n  "))
	}
}

// splitIntervals are the split_queries_by_interval values a range query
// is compared at: every step on its own, a few steps per sub-range, and
// fixed intervals that cut the grid off the step boundaries' phase.
func splitIntervals(step time.Duration) []time.Duration {
	return []time.Duration{time.Nanosecond, step, 2 * step, 3 * step, 7 * time.Second, time.Minute}
}

// checkSplit compares a metric range query split at several intervals with
// its single-pass answer, bit for bit.
func (r *runner) checkSplit(p engine.Params, where string) {
	t := r.t
	t.Helper()
	exec := func(interval time.Duration, force bool) (engine.Result, error) {
		l := r.limits
		l.SplitQueriesByInterval = units.Duration(interval)
		eng := engine.New(r.db, tenant.NewOverrides(l), engine.Options{ForceSplit: force, Now: r.clock()})
		return eng.Exec(context.Background(), p)
	}
	want, wantErr := exec(0, false)
	require.Zero(t, want.Stats.Splits, where)
	if wantErr == nil {
		r.splitChecked++
	}
	for _, iv := range splitIntervals(p.Step) {
		got, err := exec(iv, true)
		w := fmt.Sprintf("%s (split by %s)", where, iv)
		if wantErr != nil {
			require.Error(t, err, w)
			require.Equal(t, wantErr.Error(), err.Error(), w)
			continue
		}
		require.NoError(t, err, w)
		if steps := int64((p.End-p.Start)/p.Step.Nanoseconds()) + 1; iv == time.Nanosecond && got.Stats.Splits > 0 {
			// Every step is its own sub-range (literals are not split;
			// max_query_lookback may drop leading steps).
			require.LessOrEqual(t, got.Stats.Splits, steps, w)
			require.Greater(t, got.Stats.Splits, int64(1), w)
			r.splitRuns++
		}
		require.Equal(t, want.Type, got.Type, w)
		require.Equal(t, len(want.Matrix), len(got.Matrix), w)
		for i := range want.Matrix {
			ws, gs := want.Matrix[i], got.Matrix[i]
			require.Equal(t, ws.Metric.String(), gs.Metric.String(), w)
			require.Equal(t, len(ws.Points), len(gs.Points), "%s: %s", w, ws.Metric)
			for j := range ws.Points {
				require.Equal(t, ws.Points[j].T, gs.Points[j].T, "%s: %s", w, ws.Metric)
				require.Equal(t, math.Float64bits(ws.Points[j].V), math.Float64bits(gs.Points[j].V), "%s: %s at %d: %v vs %v", w, ws.Metric, ws.Points[j].T, ws.Points[j].V, gs.Points[j].V)
			}
		}
	}
}

// checkError compares err with the error_contains / error lines of a
// failing command.
func (r *runner) checkError(where string, body []string, err error) {
	t := r.t
	t.Helper()
	for _, b := range body {
		switch {
		case strings.HasPrefix(b, "error_contains "):
			require.Contains(t, err.Error(), strings.TrimPrefix(b, "error_contains "), where)
		case strings.HasPrefix(b, "error "):
			want, err2 := strconv.Unquote(strings.TrimPrefix(b, "error "))
			if err2 != nil {
				want = strings.TrimPrefix(b, "error ")
			}
			require.Equal(t, want, err.Error(), where)
		default:
			t.Fatalf("%s: unexpected line %q after a failing command", where, b)
		}
	}
}

// clock is the engine's clock: the time of the last `now` command, else
// the real clock.
func (r *runner) clock() func() time.Time {
	if r.now.IsZero() {
		return nil
	}
	now := r.now
	return func() time.Time { return now }
}

// format checks the pretty-printed form of a query (format_query); the
// expected lines keep their indentation relative to the first one.
func (r *runner) format(c command, fail bool, query string) {
	t := r.t
	t.Helper()
	where := fmt.Sprintf("line %d: %s", c.line, c.head)
	expr, err := syntax.ParseExpr(query)
	if fail {
		require.Error(t, err, where)
		r.checkError(where, c.body, err)
		return
	}
	require.NoError(t, err, where)
	got := syntax.Prettify(expr)
	require.Equal(t, strings.Join(c.raw, "\n"), got, where)
	// The pretty form parses back to the same query.
	again, err := syntax.ParseExpr(got)
	require.NoError(t, err, where)
	require.Equal(t, expr.String(), again.String(), where)
}

// parseEval parses the part of an eval command after the word eval.
func parseEval(s string) (engine.Params, string, error) {
	p := engine.Params{Tenants: []string{model.TenantFake}, Limit: 100, Direction: model.Backward}
	kind, rest := cutToken(s)
	var err error
	var tok string
	switch kind {
	case "instant":
		tok, rest = cutToken(rest)
		if tok != "at" {
			return p, "", fmt.Errorf("expected 'at', got %q", tok)
		}
		tok, rest = cutToken(rest)
		if p.Start, err = parseTime(tok); err != nil {
			return p, "", err
		}
		p.End, p.Instant = p.Start, true
	case "range", "logs":
		for _, want := range []string{"from", "", "to", ""} {
			tok, rest = cutToken(rest)
			switch want {
			case "":
				ts, err := parseTime(tok)
				if err != nil {
					return p, "", err
				}
				if p.Start == 0 {
					p.Start = ts
				} else {
					p.End = ts
				}
			default:
				if tok != want {
					return p, "", fmt.Errorf("expected %q, got %q", want, tok)
				}
			}
		}
		if kind == "range" {
			tok, rest = cutToken(rest)
			if tok != "step" {
				return p, "", fmt.Errorf("expected 'step', got %q", tok)
			}
			tok, rest = cutToken(rest)
			d, err := parseDuration(tok)
			if err != nil {
				return p, "", err
			}
			p.Step = d
		}
	default:
		return p, "", fmt.Errorf("expected instant, range or logs, got %q", kind)
	}
	for {
		tok, after := cutToken(rest)
		k, v, ok := strings.Cut(tok, "=")
		if !ok {
			break
		}
		switch k {
		case "limit":
			if p.Limit, err = strconv.Atoi(v); err != nil {
				return p, "", err
			}
		case "direction":
			p.Direction = model.Backward
			if v == "forward" {
				p.Direction = model.Forward
			}
		case "interval":
			if p.Interval, err = parseDuration(v); err != nil {
				return p, "", err
			}
		case "tenants":
			p.Tenants = strings.Split(v, "|")
		default:
			ok = false
		}
		if !ok {
			break
		}
		rest = after
	}
	p.Query = strings.TrimSpace(rest)
	return p, p.Query, nil
}

// Format renders a result as the expected-output lines of a script.
func Format(res engine.Result, p engine.Params) []string {
	var out []string
	switch res.Type {
	case engine.TypeScalar:
		out = append(out, "scalar "+formatValue(res.Scalar.V))
	case engine.TypeVector:
		for _, s := range res.Vector {
			out = append(out, s.Metric.String()+" "+formatValue(s.V))
		}
	case engine.TypeMatrix:
		n := int((p.End-p.Start)/p.Step.Nanoseconds()) + 1
		for _, s := range res.Matrix {
			vals := make([]string, n)
			for i := range vals {
				vals[i] = "_"
			}
			for _, pt := range s.Points {
				k := (pt.T*1e6 - p.Start) / p.Step.Nanoseconds()
				vals[k] = formatValue(pt.V)
			}
			out = append(out, s.Metric.String()+" "+strings.Join(vals, " "))
		}
	case engine.TypeStreams:
		for _, s := range res.Streams {
			for _, e := range s.Entries {
				l := s.Labels.String() + " " + formatTime(e.Timestamp) + " " + strconv.Quote(e.Line)
				if !e.Metadata.IsEmpty() {
					l += " md=" + e.Metadata.String()
				}
				if !e.Parsed.IsEmpty() {
					l += " parsed=" + e.Parsed.String()
				}
				out = append(out, l)
			}
		}
	}
	return out
}

// normalize rewrites an expected line in Format's canonical form (labels
// re-printed, times and values re-formatted) so scripts may be written
// loosely.
func normalize(line string, p engine.Params) string {
	if v, ok := strings.CutPrefix(line, "scalar "); ok {
		return "scalar " + normalizeValue(strings.TrimSpace(v))
	}
	ls, rest, err := cutLabels(line)
	if err != nil {
		return line
	}
	rest = strings.TrimSpace(rest)
	tok, after := cutToken(rest)
	if a := strings.TrimSpace(after); strings.HasPrefix(a, "\"") || strings.HasPrefix(a, "`") {
		ts, err := parseTime(tok)
		if err != nil {
			return line
		}
		s, after2, err := cutString(after)
		if err != nil {
			return line
		}
		out := ls.String() + " " + formatTime(ts) + " " + strconv.Quote(s)
		for _, f := range []string{"md=", "parsed="} {
			after2 = strings.TrimSpace(after2)
			if v, ok := strings.CutPrefix(after2, f); ok {
				l, a, err := cutLabels(v)
				if err != nil {
					return line
				}
				out += " " + f + l.String()
				after2 = a
			}
		}
		return out
	}
	vals := strings.Fields(rest)
	for i, v := range vals {
		vals[i] = normalizeValue(v)
	}
	return ls.String() + " " + strings.Join(vals, " ")
}

func normalizeValue(v string) string {
	if v == "_" {
		return v
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return v
	}
	return formatValue(f)
}

// formatValue prints a value rounded to 12 significant digits, so that
// scripts need not spell out float noise.
func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 12, 64), 64)
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func formatTime(ns int64) string {
	d := time.Duration(ns - Base.UnixNano())
	if d == 0 {
		return "0s"
	}
	return d.String()
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func parseTime(s string) (int64, error) {
	d, err := parseDuration(s)
	if err != nil {
		return 0, err
	}
	return Base.UnixNano() + d.Nanoseconds(), nil
}

func parseDuration(s string) (time.Duration, error) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	d, err := time.ParseDuration(s)
	if err != nil {
		// Prometheus units (d, w) too.
		var md units.Duration
		if err2 := md.Set(s); err2 != nil {
			return 0, fmt.Errorf("bad time or duration %q", s)
		}
		d = md.D()
	}
	if neg {
		d = -d
	}
	return d, nil
}

func cutToken(s string) (string, string) {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

// cutLabels parses a `{…}` label set at the start of s.
func cutLabels(s string) (model.Labels, string, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") {
		return model.EmptyLabels(), s, fmt.Errorf("expected labels at %q", s)
	}
	inQuote := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && inQuote:
			i++
		case c == '"':
			inQuote = !inQuote
		case c == '}' && !inQuote:
			if i == 1 {
				return labels.EmptyLabels(), s[2:], nil
			}
			ls, err := model.ParseLabels(s[:i+1])
			return ls, s[i+1:], err
		}
	}
	return model.EmptyLabels(), s, fmt.Errorf("unterminated labels in %q", s)
}

// cutString parses a Go double-quoted or backtick string at the start of s.
func cutString(s string) (string, string, error) {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	if s == "" {
		return "", "", fmt.Errorf("expected a string")
	}
	q := s[0]
	if q != '"' && q != '`' {
		return "", "", fmt.Errorf("expected a quoted string at %q", s)
	}
	for i := 1; i < len(s); i++ {
		if q == '"' && s[i] == '\\' {
			i++
			continue
		}
		if s[i] == q {
			v, err := strconv.Unquote(s[:i+1])
			return v, s[i+1:], err
		}
	}
	return "", "", fmt.Errorf("unterminated string in %q", s)
}

package loki

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ledgerlog/ledgerlog/internal/logql/engine"
	"github.com/ledgerlog/ledgerlog/internal/logql/pipeline"
	"github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/model"
)

// Defaults of the detected_* endpoints (Loki's).
const (
	detectedDefaultLineLimit = 1000 // lines sampled
	detectedDefaultLimit     = 1000 // fields or values returned
	detectedMaxLabelCard     = 50   // labels with more values are not offered for breakdown
	defaultPageLimit         = 5000 // engine page size when the tenant sets no max_entries_limit_per_query
)

// Detected field types, as Loki names them.
const (
	fieldString   = "string"
	fieldInt      = "int"
	fieldFloat    = "float"
	fieldBoolean  = "boolean"
	fieldDuration = "duration"
	fieldBytes    = "bytes"
)

// Parser names of detected fields.
const (
	parserJSON   = "json"
	parserLogfmt = "logfmt"
)

// staticDetectedLabels are always offered by detected_labels when present,
// whatever their cardinality (Loki's list).
var staticDetectedLabels = map[string]bool{"cluster": true, "namespace": true, "instance": true, "pod": true}

// hiddenLabels are internal labels never offered as detected labels.
var hiddenLabels = map[string]bool{"__stream_shard__": true, "__aggregated_metric__": true, model.TenantLabel: true}

// scanRequest is a log query read page by page through the engine.
type scanRequest struct {
	tenants    []string
	query      string
	start, end int64 // [start, end), Unix ns
	dir        model.Direction
	max        int // stop after this many entries; 0: no limit
}

// pageLimit is the largest page the engine accepts for these tenants.
func (a *API) pageLimit(tenants []string) int {
	n := 0
	for _, t := range tenants {
		if l := a.opts.Overrides.For(t).MaxEntriesLimitPerQuery; l > 0 && (n == 0 || l < n) {
			n = l
		}
	}
	if n == 0 {
		n = defaultPageLimit
	}
	return n
}

// scan runs a log query through the engine in pages and calls fn for every
// entry in req.dir order until fn returns false, req.max entries were seen
// or the range is exhausted. A page ends at the oldest (backward) or starts
// at the newest (forward) timestamp of the previous one, and the entries
// already seen at that timestamp are skipped, so entries with equal
// timestamps at page edges are neither lost nor repeated. If one timestamp
// alone holds more entries than a page, scan stops there. fn must not keep
// e after it returns.
func (a *API) scan(ctx context.Context, req scanRequest, fn func(ls model.Labels, e *engine.Entry) bool) error {
	page := a.pageLimit(req.tenants)
	start, end := req.start, req.end
	seen := 0
	var edge map[string]struct{} // entries at the page edge timestamp
	for start < end {
		limit := page
		if req.max > 0 && req.max-seen+len(edge) < limit {
			limit = req.max - seen + len(edge)
		}
		res, err := a.opts.Engine.Exec(ctx, engine.Params{
			Tenants: req.tenants, Query: req.query, Start: start, End: end,
			Limit: limit, Direction: req.dir, Step: time.Second,
		})
		if err != nil {
			return err
		}
		if res.Type != engine.TypeStreams {
			return badRequest(errString("only log queries are supported"))
		}
		entries := orderEntries(res.Streams, req.dir)
		if len(entries) == 0 {
			return nil
		}
		edgeTS := entries[len(entries)-1].e.Timestamp
		next := map[string]struct{}{}
		fresh := 0
		for _, x := range entries {
			k := entryKey(x.ls, x.e)
			if x.e.Timestamp == edgeTS {
				next[k] = struct{}{}
			}
			if _, dup := edge[k]; dup {
				continue
			}
			fresh++
			seen++
			if !fn(x.ls, x.e) || (req.max > 0 && seen >= req.max) {
				return nil
			}
		}
		if len(entries) < limit || fresh == 0 {
			return nil
		}
		if edgeTS == edgeTimestamp(edge, start, end, req.dir) {
			for k := range edge {
				next[k] = struct{}{}
			}
		}
		edge = next
		if req.dir == model.Forward {
			start = edgeTS
		} else {
			end = edgeTS + 1
		}
	}
	return nil
}

// edgeTimestamp is the timestamp the previous page edge was at: the current
// bound (start forward, end-1 backward), or a value no entry has when there
// was no previous page.
func edgeTimestamp(edge map[string]struct{}, start, end int64, dir model.Direction) int64 {
	if edge == nil {
		return -1 << 63
	}
	if dir == model.Forward {
		return start
	}
	return end - 1
}

type orderedEntry struct {
	ls model.Labels
	e  *engine.Entry
}

// orderEntries flattens streams into one list in dir order (ties by
// labels, then line), the order the engine chose its limit in.
func orderEntries(streams []engine.Stream, dir model.Direction) []orderedEntry {
	var out []orderedEntry
	for i := range streams {
		for j := range streams[i].Entries {
			out = append(out, orderedEntry{ls: streams[i].Labels, e: &streams[i].Entries[j]})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].e.Timestamp, out[j].e.Timestamp
		if a != b {
			if dir == model.Forward {
				return a < b
			}
			return a > b
		}
		return out[i].ls.String() < out[j].ls.String()
	})
	return out
}

func entryKey(ls model.Labels, e *engine.Entry) string {
	return ls.String() + "\x00" + e.Metadata.String() + "\x00" + e.Line
}

// detectedRequest holds the parameters of detected_fields and
// detected_field/<name>/values.
type detectedRequest struct {
	tenants    []string
	query      string
	start, end int64
	lineLimit  int
	limit      int
}

func (a *API) parseDetected(r *http.Request) (*detectedRequest, error) {
	tenants, err := a.opts.Tenants.Read(r)
	if err != nil {
		return nil, err
	}
	q := r.Form.Get("query")
	if q == "" {
		return nil, badRequest(errString("query parameter is required"))
	}
	start, end, err := bounds(r, a.opts.Now(), queryRangeDefaultSince)
	if err != nil {
		return nil, badRequest(err)
	}
	if end < start {
		return nil, badRequest(errString("end timestamp must not be before or equal to start time"))
	}
	d := &detectedRequest{tenants: tenants, query: q, start: start, end: end}
	if d.limit, err = limitParam(r, detectedDefaultLimit); err != nil {
		return nil, badRequest(err)
	}
	d.lineLimit = detectedDefaultLineLimit
	if v := r.Form.Get("line_limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return nil, badRequest(errString("could not parse 'line_limit' parameter: must be a positive integer"))
		}
		d.lineLimit = n
	}
	return d, nil
}

// field is what the sampled lines say about one field.
type field struct {
	name     string
	types    map[string]int
	parsers  map[string]bool // empty: structured metadata
	jsonPath []string
	values   map[string]struct{}
}

// fieldDetector infers fields from log lines: structured metadata, labels
// the query's own parsers extracted, and its own json (with the path of
// nested keys) or logfmt parse of the line. It is not safe for concurrent
// use.
type fieldDetector struct {
	fields map[string]*field
	logfmt *pipeline.Pipeline
	sps    map[string]*pipeline.StreamPipeline
}

func newFieldDetector() (*fieldDetector, error) {
	p, err := pipeline.New([]syntax.Stage{&syntax.LogfmtParserExpr{}})
	if err != nil {
		return nil, err
	}
	return &fieldDetector{fields: map[string]*field{}, logfmt: p, sps: map[string]*pipeline.StreamPipeline{}}, nil
}

func (d *fieldDetector) add(name, value, parser string, path []string) {
	if name == "" || name == pipeline.ErrorLabel || name == pipeline.ErrorDetailsLabel {
		return
	}
	f := d.fields[name]
	if f == nil {
		f = &field{name: name, types: map[string]int{}, parsers: map[string]bool{}, values: map[string]struct{}{}}
		d.fields[name] = f
	}
	if parser != "" {
		f.parsers[parser] = true
	}
	if path != nil && f.jsonPath == nil {
		f.jsonPath = path
	}
	if _, ok := f.values[value]; !ok {
		f.values[value] = struct{}{}
		f.types[valueType(value)]++
	}
}

// observe records the fields of one entry of stream ls.
func (d *fieldDetector) observe(ls model.Labels, e *engine.Entry) {
	e.Metadata.Range(func(l model.Label) { d.add(l.Name, l.Value, "", nil) })
	line := strings.TrimSpace(e.Line)
	isJSON := strings.HasPrefix(line, "{")
	parsed := false
	if isJSON {
		parsed = walkJSON([]byte(line), func(path []string, value string) {
			d.add(jsonFieldName(path, ls), value, parserJSON, path)
		})
	}
	if !parsed {
		k := ls.String()
		sp := d.sps[k]
		if sp == nil {
			if len(d.sps) > 10000 {
				clear(d.sps)
			}
			sp = d.logfmt.ForStream(ls)
			d.sps[k] = sp
		}
		if _, lbls, ok := sp.ProcessString(e.Timestamp, e.Line, model.EmptyLabels()); ok && lbls.Err() == "" {
			lbls.Parsed().Range(func(l model.Label) { d.add(l.Name, l.Value, parserLogfmt, nil) })
		}
	}
	// Labels the query's own parsers extracted.
	parser := parserLogfmt
	if isJSON {
		parser = parserJSON
	}
	e.Parsed.Range(func(l model.Label) { d.add(l.Name, l.Value, parser, nil) })
}

// jsonFieldName is the label name Loki's json parser gives a nested key:
// the sanitised keys joined by "_", renamed with _extracted when it
// collides with a stream label.
func jsonFieldName(path []string, ls model.Labels) string {
	var b []byte
	for i, k := range path {
		if i > 0 {
			b = append(b, '_')
		}
		b = appendSanitizedKey(b, k)
	}
	name := string(b)
	if ls.Has(name) {
		name += "_extracted"
	}
	return name
}

func appendSanitizedKey(dst []byte, key string) []byte {
	key = strings.TrimSpace(key)
	if key == "" {
		return dst
	}
	if key[0] >= '0' && key[0] <= '9' {
		dst = append(dst, '_')
	}
	for _, r := range key {
		if r < utf8.RuneSelf && (r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			dst = append(dst, byte(r))
		} else {
			dst = append(dst, '_')
		}
	}
	return dst
}

// walkJSON calls fn for every scalar of a JSON object with its key path
// (arrays and nulls are skipped, as Loki's json parser skips them). It
// reports false if line is not one JSON object.
func walkJSON(line []byte, fn func(path []string, value string)) bool {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return false
	}
	var path []string
	var walkObject func() error
	walkObject = func() error {
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			vt, err := dec.Token()
			if err != nil {
				return err
			}
			switch v := vt.(type) {
			case json.Delim:
				if v == '{' {
					path = append(path, key)
					if err := walkObject(); err != nil {
						return err
					}
					path = path[:len(path)-1]
				} else if err := skipJSONArray(dec); err != nil {
					return err
				}
			case string:
				fn(append(append([]string(nil), path...), key), v)
			case json.Number:
				fn(append(append([]string(nil), path...), key), v.String())
			case bool:
				fn(append(append([]string(nil), path...), key), strconv.FormatBool(v))
			}
		}
		_, err := dec.Token() // '}'
		return err
	}
	if err := walkObject(); err != nil {
		return false
	}
	_, err = dec.Token()
	return errors.Is(err, io.EOF)
}

func skipJSONArray(dec *json.Decoder) error {
	depth := 1
	for depth > 0 {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := t.(json.Delim); ok {
			switch d {
			case '[', '{':
				depth++
			case ']', '}':
				depth--
			}
		}
	}
	return nil
}

// bytesPattern matches a human-readable size such as "10KB", "1.5 MiB".
var bytesPattern = regexp.MustCompile(`^[0-9]+(\.[0-9]+)? ?([kKMGTPE]i?[bB]|[bB]|[kKMGTPE])$`)

// valueType infers a field value's type as Loki does, in this order: int,
// float, boolean, duration, bytes, else string.
func valueType(v string) string {
	if _, err := strconv.ParseInt(v, 10, 64); err == nil {
		return fieldInt
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil {
		return fieldFloat
	}
	if _, err := strconv.ParseBool(v); err == nil {
		return fieldBoolean
	}
	if _, err := time.ParseDuration(v); err == nil {
		return fieldDuration
	}
	if bytesPattern.MatchString(v) {
		return fieldBytes
	}
	return fieldString
}

// fieldType resolves the types of a field's values: one type if all agree,
// float for a mix of int and float, else string.
func fieldType(types map[string]int) string {
	if len(types) == 1 {
		for t := range types {
			return t
		}
	}
	if len(types) == 2 && types[fieldInt] > 0 && types[fieldFloat] > 0 {
		return fieldFloat
	}
	return fieldString
}

// detect samples lines of the request's query and returns the detector.
func (a *API) detect(ctx context.Context, d *detectedRequest) (*fieldDetector, error) {
	fd, err := newFieldDetector()
	if err != nil {
		return nil, err
	}
	err = a.scan(ctx, scanRequest{
		tenants: d.tenants, query: d.query, start: d.start, end: d.end,
		dir: model.Backward, max: d.lineLimit,
	}, func(ls model.Labels, e *engine.Entry) bool {
		fd.observe(ls, e)
		return true
	})
	return fd, err
}

// detectedFields serves /loki/api/v1/detected_fields: the fields found in
// up to line_limit of the newest lines of the query, with their type,
// cardinality (exact, over the sample), parsers (null for structured
// metadata) and, for json, the key path.
func (a *API) detectedFields(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	d, err := a.parseDetected(r)
	if err != nil {
		status, msg := errorStatus(err)
		writeError(w, status, msg)
		return
	}
	fd, err := a.detect(r.Context(), d)
	if err != nil {
		a.writeEngineError(w, d.query, err)
		return
	}
	names := make([]string, 0, len(fd.fields))
	for n := range fd.fields {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) > d.limit {
		names = names[:d.limit]
	}
	type fieldJSON struct {
		Label       string   `json:"label"`
		Type        string   `json:"type"`
		Cardinality int      `json:"cardinality"`
		Parsers     []string `json:"parsers"`
		JSONPath    []string `json:"jsonPath,omitempty"`
	}
	out := make([]fieldJSON, 0, len(names))
	for _, n := range names {
		f := fd.fields[n]
		fj := fieldJSON{Label: n, Type: fieldType(f.types), Cardinality: len(f.values), JSONPath: f.jsonPath}
		for p := range f.parsers {
			fj.Parsers = append(fj.Parsers, p)
		}
		sort.Strings(fj.Parsers)
		out = append(out, fj)
	}
	writeJSON(w, map[string]any{"fields": out, "limit": d.limit})
}

// detectedFieldValues serves /loki/api/v1/detected_field/<name>/values:
// the distinct values of a field (or, failing that, of a stream label) in
// the sampled lines, sorted.
func (a *API) detectedFieldValues(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !parseForm(w, r) {
		return
	}
	d, err := a.parseDetected(r)
	if err != nil {
		status, msg := errorStatus(err)
		writeError(w, status, msg)
		return
	}
	fd, err := newFieldDetector()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	labelValues := map[string]struct{}{}
	err = a.scan(r.Context(), scanRequest{
		tenants: d.tenants, query: d.query, start: d.start, end: d.end,
		dir: model.Backward, max: d.lineLimit,
	}, func(ls model.Labels, e *engine.Entry) bool {
		fd.observe(ls, e)
		if v := ls.Get(name); v != "" {
			labelValues[v] = struct{}{}
		}
		return true
	})
	if err != nil {
		a.writeEngineError(w, d.query, err)
		return
	}
	set := labelValues
	if f := fd.fields[name]; f != nil {
		set = f.values
	}
	values := sortedSet(set)
	if len(values) > d.limit {
		values = values[:d.limit]
	}
	writeJSON(w, map[string]any{"values": values, "limit": d.limit})
}

// detectedLabels serves /loki/api/v1/detected_labels: the stream labels of
// matching streams in [start, end] with their exact cardinality, leaving
// out internal labels, labels with a single value, labels with more than
// 50 values and labels whose values are all IDs (UUIDs, long hex), except
// for cluster, namespace, instance and pod which are always offered.
func (a *API) detectedLabels(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	tenants, err := a.opts.Tenants.Read(r)
	if err != nil {
		status, msg := errorStatus(err)
		writeError(w, status, msg)
		return
	}
	start, end, err := bounds(r, a.opts.Now(), queryRangeDefaultSince)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var ms []*model.Matcher
	if q := strings.TrimSpace(r.Form.Get("query")); q != "" && q != "{}" {
		sel, err := syntax.ParseLogSelector(q, false)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		ms = sel.Matchers()
	}
	values := map[string]map[string]struct{}{}
	for _, t := range tenants {
		series, err := a.opts.Store.Series(r.Context(), t, ms, model.TimeRange{Min: start, Max: end + 1})
		if err != nil {
			status, msg := errorStatus(err)
			writeError(w, status, msg)
			return
		}
		for _, ls := range series {
			ls.Range(func(l model.Label) {
				if hiddenLabels[l.Name] {
					return
				}
				s := values[l.Name]
				if s == nil {
					s = map[string]struct{}{}
					values[l.Name] = s
				}
				s[l.Value] = struct{}{}
			})
		}
	}
	type labelJSON struct {
		Label       string `json:"label"`
		Cardinality int    `json:"cardinality"`
	}
	out := []labelJSON{}
	for _, name := range sortedKeys(values) {
		vs := values[name]
		if !staticDetectedLabels[name] && (len(vs) < 2 || len(vs) > detectedMaxLabelCard || allIDs(vs)) {
			continue
		}
		out = append(out, labelJSON{Label: name, Cardinality: len(vs)})
	}
	writeJSON(w, map[string]any{"detectedLabels": out})
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var idPattern = regexp.MustCompile(`^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{16,})$`)

func allIDs(vs map[string]struct{}) bool {
	for v := range vs {
		if !idPattern.MatchString(v) {
			return false
		}
	}
	return true
}

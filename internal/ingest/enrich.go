package ingest

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// Names of the labels and metadata Loki 3 adds or reads.
const (
	LabelServiceName      = "service_name"
	ServiceUnknown        = "unknown_service"
	LabelDetectedLevel    = "detected_level"
	labelAggregatedMetric = "__aggregated_metric__"
	labelPattern          = "__pattern__"
	metadataSeverityNum   = "severity_number"
)

// Normalised levels, as Loki writes them into detected_level.
const (
	LevelTrace    = "trace"
	LevelDebug    = "debug"
	LevelInfo     = "info"
	LevelWarn     = "warn"
	LevelError    = "error"
	LevelCritical = "critical"
	LevelFatal    = "fatal"
	LevelUnknown  = "unknown"
)

// defaultLevelFields are Loki's log_level_fields when the limit is empty.
var defaultLevelFields = []string{
	"level", "LEVEL", "Level", "log.level", "severity", "SEVERITY", "Severity", "SeverityText",
	"lvl", "LVL", "Lvl", "severity_text", "Severity_Text", "SEVERITY_TEXT",
}

// jsonLevelMaxDepth is Loki's log_level_from_json_max_depth default: the
// level key is looked for in the top-level object and one level below.
const jsonLevelMaxDepth = 2

func isInternalStream(ls model.Labels) bool {
	return ls.Has(labelAggregatedMetric) || ls.Has(labelPattern)
}

// withServiceName adds the service_name label as Loki's push parser does:
// unless the stream has one already (or is an internal stream), copy the value
// of the first label of discover that the stream has, else unknown_service.
// An empty discover list disables it.
func withServiceName(ls model.Labels, discover []string) model.Labels {
	if len(discover) == 0 || ls.Has(LabelServiceName) || ls.Has(labelAggregatedMetric) {
		return ls
	}
	name := ServiceUnknown
	for _, l := range discover {
		if v := ls.Get(l); v != "" {
			name = v
			break
		}
	}
	b := model.NewLabelsBuilder(ls)
	b.Set(LabelServiceName, name)
	return b.Labels()
}

// normalizeLevel maps the spellings Loki recognises to its level names and
// returns anything else unchanged.
func normalizeLevel(v string) string {
	switch len(v) {
	case 3:
		switch {
		case strings.EqualFold(v, "trc"):
			return LevelTrace
		case strings.EqualFold(v, "dbg"):
			return LevelDebug
		case strings.EqualFold(v, "inf"):
			return LevelInfo
		case strings.EqualFold(v, "wrn"):
			return LevelWarn
		case strings.EqualFold(v, "err"):
			return LevelError
		}
	case 4:
		switch {
		case strings.EqualFold(v, "info"):
			return LevelInfo
		case strings.EqualFold(v, "warn"):
			return LevelWarn
		}
	case 5:
		switch {
		case strings.EqualFold(v, "trace"):
			return LevelTrace
		case strings.EqualFold(v, "debug"):
			return LevelDebug
		case strings.EqualFold(v, "error"):
			return LevelError
		case strings.EqualFold(v, "fatal"):
			return LevelFatal
		}
	case 7:
		if strings.EqualFold(v, "warning") {
			return LevelWarn
		}
	case 8:
		if strings.EqualFold(v, "critical") {
			return LevelCritical
		}
	case 11:
		if strings.EqualFold(v, "information") {
			return LevelInfo
		}
	}
	return v
}

// knownLevel is normalizeLevel for values found inside a line: a value that
// is not a known level yields "".
func knownLevel(v string) string {
	if n := normalizeLevel(v); n != v || isLevelName(n) {
		return n
	}
	return ""
}

func isLevelName(v string) bool {
	switch v {
	case LevelTrace, LevelDebug, LevelInfo, LevelWarn, LevelError, LevelCritical, LevelFatal:
		return true
	}
	return false
}

// levelFromSeverityNumber maps an OTLP severity number (kept as structured
// metadata by the OTLP mapping) to a level, as Loki does.
func levelFromSeverityNumber(s string) string {
	n, err := strconv.Atoi(s)
	switch {
	case err != nil:
		return LevelInfo
	case n == 0:
		return LevelUnknown
	case n <= 4:
		return LevelTrace
	case n <= 8:
		return LevelDebug
	case n <= 12:
		return LevelInfo
	case n <= 16:
		return LevelWarn
	case n <= 20:
		return LevelError
	case n <= 24:
		return LevelFatal
	}
	return LevelUnknown
}

// levelDetector finds an entry's level the way Loki's distributor does. It is
// built per Validate call from the tenant's log_level_fields and is not safe
// for concurrent use.
type levelDetector struct {
	fields   []string
	fieldSet map[string]struct{}
}

func newLevelDetector(fields []string) *levelDetector {
	if len(fields) == 0 {
		fields = defaultLevelFields
	}
	d := &levelDetector{fields: fields, fieldSet: make(map[string]struct{}, len(fields))}
	for _, f := range fields {
		d.fieldSet[f] = struct{}{}
	}
	return d
}

// fromLabels returns the value of the first level field present in ls.
func (d *levelDetector) fromLabels(ls model.Labels) (string, bool) {
	if ls.IsEmpty() {
		return "", false
	}
	for _, f := range d.fields {
		if ls.Has(f) {
			return ls.Get(f), true
		}
	}
	return "", false
}

// fromEntry detects the level of an entry whose stream has no level label:
// from its structured metadata, else its OTLP severity number, else its line.
func (d *levelDetector) fromEntry(e *model.Entry) string {
	if v, ok := d.fromLabels(e.Metadata); ok {
		return normalizeLevel(v)
	}
	if sn := e.Metadata.Get(metadataSeverityNum); sn != "" {
		return levelFromSeverityNumber(sn)
	}
	return d.fromLine(e.Line)
}

// fromLine detects the level of a line: the level field of a JSON object or
// a logfmt line if it holds a known level, else a keyword in the text.
func (d *levelDetector) fromLine(line string) string {
	var v string
	switch {
	case looksLikeJSON(line):
		v = jsonLevel(line, d.fieldSet, jsonLevelMaxDepth)
	case strings.IndexByte(line, '=') >= 0:
		v = logfmtValue(line, d.fields)
	default:
		return levelFromKeywords(line)
	}
	if lvl := knownLevel(v); lvl != "" {
		return lvl
	}
	return levelFromKeywords(line)
}

// looksLikeJSON reports whether the first and last non-space characters are
// braces, Loki's test for a JSON line.
func looksLikeJSON(line string) bool {
	first := -1
	for i, r := range line {
		if !unicode.IsSpace(r) {
			first = i
			break
		}
	}
	if first < 0 || line[first] != '{' {
		return false
	}
	for i := len(line) - 1; i >= 0; i-- {
		if !unicode.IsSpace(rune(line[i])) {
			return line[i] == '}'
		}
	}
	return false
}

// levelWords are the keywords looked for in free text, in Loki's priority
// order. Only the first occurrence of each word counts, and only if it stands
// alone (no letter, digit or underscore on either side).
var levelWords = [...]struct{ word, level string }{
	{"trace", LevelTrace},
	{"debug", LevelDebug},
	{"fatal", LevelFatal},
	{"critical", LevelCritical},
	{"error", LevelError},
	{"err", LevelError},
	{"warning", LevelWarn},
	{"warn", LevelWarn},
	{"info", LevelInfo},
}

// levelFromKeywords finds the first level keyword of a line, ignoring ASCII
// case, in one pass and without allocating.
func levelFromKeywords(line string) string {
	var first [len(levelWords)]int
	for i := range first {
		first[i] = -1
	}
	missing := len(levelWords)
	for i := 0; i < len(line) && missing > 0; i++ {
		c := line[i] | 0x20 // ASCII lower case; other bytes never match below
		switch c {
		case 't', 'd', 'f', 'c', 'e', 'w', 'i':
		default:
			continue
		}
		for w := range levelWords {
			if first[w] >= 0 || levelWords[w].word[0] != c {
				continue
			}
			if hasFoldPrefix(line[i:], levelWords[w].word) {
				first[w] = i
				missing--
			}
		}
	}
	for w, pos := range first {
		if pos >= 0 && isWordBoundary(line, pos-1) && isWordBoundary(line, pos+len(levelWords[w].word)) {
			return levelWords[w].level
		}
	}
	return LevelUnknown
}

// hasFoldPrefix reports whether s starts with the lower-case ASCII word,
// ignoring ASCII case.
func hasFoldPrefix(s, word string) bool {
	if len(s) < len(word) {
		return false
	}
	for i := 0; i < len(word); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != word[i] {
			return false
		}
	}
	return true
}

func isWordBoundary(s string, pos int) bool {
	if pos < 0 || pos >= len(s) {
		return true
	}
	r := rune(s[pos])
	return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_'
}

// logfmtValue returns the value of the highest-priority field of a logfmt
// line (keys compared ignoring case), or "".
func logfmtValue(line string, fields []string) string {
	best, bestPos := "", len(fields)
	i := 0
	for i < len(line) {
		for i < len(line) && line[i] <= ' ' {
			i++
		}
		if i >= len(line) {
			break
		}
		start := i
		for i < len(line) && line[i] > ' ' && line[i] != '=' && line[i] != '"' {
			i++
		}
		if i == start {
			break // a key cannot start with '=' or '"'
		}
		key := line[start:i]
		var value string
		if i < len(line) && line[i] == '=' {
			i++
			if i < len(line) && line[i] == '"' {
				j := i + 1
				escaped := false
				for j < len(line) && line[j] != '"' {
					if line[j] == '\\' {
						escaped = true
						j++
					}
					j++
				}
				if j >= len(line) {
					break // unterminated quoted value
				}
				value = line[i+1 : j]
				if escaped {
					if u, err := strconv.Unquote(line[i : j+1]); err == nil {
						value = u
					}
				}
				i = j + 1
			} else {
				vs := i
				for i < len(line) && line[i] > ' ' {
					i++
				}
				value = line[vs:i]
			}
		}
		for x := 0; x < bestPos; x++ {
			if strings.EqualFold(key, fields[x]) {
				best, bestPos = value, x
				if x == 0 {
					return best
				}
				break
			}
		}
	}
	return best
}

// jsonLevel returns the string value of the first level field met in a
// depth-first walk of a JSON object (into nested objects up to maxDepth
// levels), or "". Malformed JSON ends the walk.
func jsonLevel(line string, fields map[string]struct{}, maxDepth int) string {
	w := jsonWalker{s: line}
	w.ws()
	v, _ := w.object(fields, 0, maxDepth)
	return v
}

// jsonWalker is a minimal, allocation-free JSON scanner for level
// detection. Methods return ok=false on malformed input.
type jsonWalker struct {
	s string
	i int
}

func (w *jsonWalker) ws() {
	for w.i < len(w.s) && (w.s[w.i] == ' ' || w.s[w.i] == '\t' || w.s[w.i] == '\n' || w.s[w.i] == '\r') {
		w.i++
	}
}

// str consumes a string and returns its raw contents (escapes left as is).
func (w *jsonWalker) str() (string, bool) {
	if w.i >= len(w.s) || w.s[w.i] != '"' {
		return "", false
	}
	start := w.i + 1
	for j := start; j < len(w.s); j++ {
		switch w.s[j] {
		case '\\':
			j++
		case '"':
			w.i = j + 1
			return w.s[start:j], true
		}
	}
	return "", false
}

// object walks an object whose '{' is at w.i; found is the level value.
func (w *jsonWalker) object(fields map[string]struct{}, depth, maxDepth int) (found string, ok bool) {
	if w.i >= len(w.s) || w.s[w.i] != '{' {
		return "", false
	}
	w.i++
	w.ws()
	if w.i < len(w.s) && w.s[w.i] == '}' {
		w.i++
		return "", true
	}
	for {
		w.ws()
		key, ok := w.str()
		if !ok {
			return "", false
		}
		w.ws()
		if w.i >= len(w.s) || w.s[w.i] != ':' {
			return "", false
		}
		w.i++
		w.ws()
		if w.i >= len(w.s) {
			return "", false
		}
		switch w.s[w.i] {
		case '"':
			v, ok := w.str()
			if !ok {
				return "", false
			}
			if _, hit := fields[key]; hit {
				return v, true
			}
		case '{':
			if maxDepth > 0 && depth+1 >= maxDepth {
				if !w.skip() {
					return "", false
				}
			} else {
				v, ok := w.object(fields, depth+1, maxDepth)
				if !ok || v != "" {
					return v, ok
				}
			}
		default:
			if !w.skip() {
				return "", false
			}
		}
		w.ws()
		if w.i >= len(w.s) {
			return "", false
		}
		switch w.s[w.i] {
		case ',':
			w.i++
		case '}':
			w.i++
			return "", true
		default:
			return "", false
		}
	}
}

// skip consumes one value of any kind.
func (w *jsonWalker) skip() bool {
	if w.i >= len(w.s) {
		return false
	}
	switch w.s[w.i] {
	case '"':
		_, ok := w.str()
		return ok
	case '{', '[':
		depth := 0
		for w.i < len(w.s) {
			switch w.s[w.i] {
			case '"':
				if _, ok := w.str(); !ok {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					w.i++
					return true
				}
			}
			w.i++
		}
		return false
	default:
		start := w.i
		for w.i < len(w.s) && !strings.ContainsRune(",}] \t\n\r", rune(w.s[w.i])) {
			w.i++
		}
		return w.i > start
	}
}

// sanitizeMetadataName rewrites a structured metadata name as Loki's
// distributor does (Prometheus' OTLP label normalisation): characters other
// than letters and digits become '_', and a name starting with a digit or a
// single '_' gets a "key" prefix.
func sanitizeMetadataName(name string) string {
	clean := true
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' {
			clean = false
			break
		}
	}
	if clean && name != "" && !unicode.IsDigit(rune(name[0])) && !(name[0] == '_' && !strings.HasPrefix(name, "__")) {
		return name
	}
	if name == "" {
		return name
	}
	out := strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return r
		}
		return '_'
	}, name)
	switch {
	case unicode.IsDigit(rune(out[0])):
		out = "key_" + out
	case out[0] == '_' && !strings.HasPrefix(out, "__"):
		out = "key" + out
	}
	return out
}

// sanitizeMetadataValue drops invalid UTF-8 (and U+FFFD) from a value, as
// Loki's distributor does.
func sanitizeMetadataValue(v string) string {
	if !strings.ContainsRune(v, utf8.RuneError) {
		return v
	}
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError {
			return -1
		}
		return r
	}, v)
}

package pipeline

import (
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// Labels with a fixed meaning in pipelines (LQ-E1, LQ-E2).
const (
	ErrorLabel        = "__error__"
	ErrorDetailsLabel = "__error_details__"
)

// Values of __error__ that stages set, as Loki names them (LQ-P7).
const (
	ErrJSON             = "JSONParserErr"
	ErrLogfmt           = "LogfmtParserErr"
	ErrSampleExtraction = "SampleExtractionErr"
	ErrLabelFilter      = "LabelFilterErr"
	ErrTemplateFormat   = "TemplateFormatErr"
)

// extractedSuffix renames an extracted label that collides with a stream
// label (LQ-P1, LQ-P8).
const extractedSuffix = "_extracted"

// category is where a label comes from. A name is present in at most one
// category; a later Set from a higher category (parsed > structured
// metadata > stream) replaces a lower one, never the other way round.
type category uint8

const (
	catStream category = iota
	catMetadata
	catParsed
)

type entry struct {
	name, value string
	cat         category
	// extracted marks a parsed label set by a parser stage on this line: a
	// later parser does not overwrite it (the first value of a key wins).
	extracted bool
}

// maxCachedLabelSets bounds the per-stream cache of built label sets.
const maxCachedLabelSets = 4096

// Labels are the labels of the entry a StreamPipeline processed last. It is
// owned by the StreamPipeline and valid only until its next Process call;
// the model.Labels its methods return are immutable copies and may be kept.
// Strings returned by Get may alias the processed line and internal buffers
// and are valid only until the next Process call.
//
// A name is in at most one category. Parsed labels (from parsers,
// label_format and the error labels) take precedence over structured
// metadata, which takes precedence over stream labels.
type Labels struct {
	base        model.Labels
	baseEntries []entry
	metadata    model.Labels

	entries         []entry
	err, errDetails string
	// dirty is set once the line's labels differ from the stream's.
	dirty bool

	// arena holds bytes of label values decoded on this line (unescaped
	// strings, template output); reset per line.
	arena []byte

	// extractedRequired counts required labels extracted on this line (see
	// hints).
	extractedRequired int

	scratch []model.Label
	hashBuf []byte
	cache   map[uint64]model.Labels
	// perm is the sorted order of entries found for the names in
	// permNames; lines of a stream usually carry the same names in the same
	// order (the same strings, from the parsers' key caches), so All() can
	// skip sorting.
	perm      []int32
	permNames []string
}

func newLabels(base model.Labels) *Labels {
	l := &Labels{base: base, cache: make(map[uint64]model.Labels)}
	base.Range(func(lb model.Label) {
		l.baseEntries = append(l.baseEntries, entry{name: lb.Name, value: lb.Value, cat: catStream})
	})
	return l
}

// reset starts a new line.
func (l *Labels) reset(metadata model.Labels) {
	l.entries = append(l.entries[:0], l.baseEntries...)
	l.err, l.errDetails = "", ""
	l.dirty = false
	l.arena = l.arena[:0]
	l.extractedRequired = 0
	l.metadata = metadata
	if metadata.IsEmpty() {
		return
	}
	metadata.Range(func(lb model.Label) {
		name := normalizeMetadataName(lb.Name)
		if l.baseHas(name) {
			name += extractedSuffix
		}
		switch name {
		case ErrorLabel:
			l.err = lb.Value
		case ErrorDetailsLabel:
			l.errDetails = lb.Value
		default:
			l.set(catMetadata, name, lb.Value)
		}
	})
	l.dirty = true
}

// baseHas reports whether the stream has a label of that name; extracted
// labels of that name get the _extracted suffix.
func (l *Labels) baseHas(name string) bool {
	for i := range l.baseEntries {
		if l.baseEntries[i].name == name {
			return true
		}
	}
	return false
}

func (l *Labels) find(name string) int {
	for i := range l.entries {
		if l.entries[i].name == name {
			return i
		}
	}
	return -1
}

// Get returns the value of a label of the processed entry, including the
// error labels. A stream label with an empty value counts as absent.
func (l *Labels) Get(name string) (string, bool) {
	switch name {
	case ErrorLabel:
		return l.err, l.err != ""
	case ErrorDetailsLabel:
		return l.errDetails, l.errDetails != ""
	}
	if i := l.find(name); i >= 0 {
		e := &l.entries[i]
		if e.cat == catStream && e.value == "" {
			return "", false
		}
		return e.value, true
	}
	return "", false
}

// get is Get without the error labels (stages handle those themselves).
func (l *Labels) get(name string) (string, category, bool) {
	if i := l.find(name); i >= 0 {
		e := &l.entries[i]
		if e.cat == catStream && e.value == "" {
			return "", 0, false
		}
		return e.value, e.cat, true
	}
	return "", 0, false
}

// set sets a label in a category, following the precedence rules.
func (l *Labels) set(cat category, name, value string) {
	l.dirty = true
	if i := l.find(name); i >= 0 {
		e := &l.entries[i]
		if e.cat > cat {
			return
		}
		e.value, e.cat, e.extracted = value, cat, false
		return
	}
	l.entries = append(l.entries, entry{name: name, value: value, cat: cat})
}

// extract sets a parsed label from a parser. It does nothing when a parser
// already extracted the name on this line (the first value wins) and
// reports whether it set the label.
func (l *Labels) extract(name, value string) bool {
	l.dirty = true
	if i := l.find(name); i >= 0 {
		e := &l.entries[i]
		if e.extracted {
			return false
		}
		e.value, e.cat, e.extracted = value, catParsed, true
		return true
	}
	l.entries = append(l.entries, entry{name: name, value: value, cat: catParsed, extracted: true})
	return true
}

// del removes a label from every category.
func (l *Labels) del(name string) {
	if i := l.find(name); i >= 0 {
		last := len(l.entries) - 1
		l.entries[i] = l.entries[last]
		l.entries = l.entries[:last]
		l.dirty = true
	}
}

// setErr sets __error__ and, when details is not empty, __error_details__
// (made valid UTF-8: details may quote the line).
func (l *Labels) setErr(err, details string) {
	l.err = err
	if details != "" {
		if !utf8.ValidString(details) {
			details = strings.ToValidUTF8(details, "\uFFFD")
		}
		l.errDetails = details
	}
	l.dirty = true
}

// copyString returns b as a string backed by the line's arena.
func (l *Labels) copyString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	start := len(l.arena)
	l.arena = append(l.arena, b...)
	return unsafe.String(&l.arena[start], len(b))
}

// Err returns the value of __error__ ("" when the entry has no error).
func (l *Labels) Err() string { return l.err }

// ErrDetails returns the value of __error_details__.
func (l *Labels) ErrDetails() string { return l.errDetails }

// Kinds of built label sets, mixed into the cache hash.
const (
	kindAll uint8 = iota
	kindStream
	kindMetadata
	kindParsed
	kindGrouped
)

// All returns every label of the processed entry: stream labels, structured
// metadata, parsed labels and the error labels. It is what metric
// aggregations group by and what identifies a result stream.
func (l *Labels) All() model.Labels {
	if !l.dirty {
		return l.base
	}
	s := l.scratch[:0]
	if l.err != "" || l.errDetails != "" {
		for i := range l.entries {
			s = append(s, model.Label{Name: l.entries[i].name, Value: l.entries[i].value})
		}
		s = l.appendErrors(s)
		return l.build(kindAll, s)
	}
	if !l.permValid() {
		l.perm = l.perm[:0]
		l.permNames = l.permNames[:0]
		for i := range l.entries {
			l.perm = append(l.perm, int32(i))
			l.permNames = append(l.permNames, l.entries[i].name)
		}
		slices.SortFunc(l.perm, func(a, b int32) int { return strings.Compare(l.entries[a].name, l.entries[b].name) })
	}
	for _, i := range l.perm {
		s = append(s, model.Label{Name: l.entries[i].name, Value: l.entries[i].value})
	}
	l.scratch = s
	return l.cached(kindAll, s)
}

// permValid reports whether the entries have exactly the names (the same
// strings) of permNames, in the same order.
func (l *Labels) permValid() bool {
	if len(l.permNames) != len(l.entries) {
		return false
	}
	for i := range l.entries {
		a, b := l.entries[i].name, l.permNames[i]
		if len(a) != len(b) || unsafe.StringData(a) != unsafe.StringData(b) {
			return false
		}
	}
	return true
}

// Stream returns the stream labels left after drop, keep and label_format.
func (l *Labels) Stream() model.Labels {
	if !l.dirty {
		return l.base
	}
	return l.category(kindStream, catStream, false)
}

// StructuredMetadata returns the entry's structured metadata labels (names
// that collide with stream labels carry the _extracted suffix).
func (l *Labels) StructuredMetadata() model.Labels {
	if l.metadata.IsEmpty() {
		return model.EmptyLabels()
	}
	return l.category(kindMetadata, catMetadata, false)
}

// Parsed returns the labels extracted by parsers and label_format, and the
// error labels.
func (l *Labels) Parsed() model.Labels {
	if !l.dirty {
		return model.EmptyLabels()
	}
	return l.category(kindParsed, catParsed, true)
}

func (l *Labels) category(kind uint8, cat category, errs bool) model.Labels {
	s := l.scratch[:0]
	for i := range l.entries {
		if l.entries[i].cat == cat {
			s = append(s, model.Label{Name: l.entries[i].name, Value: l.entries[i].value})
		}
	}
	if errs {
		s = l.appendErrors(s)
	}
	if len(s) == 0 {
		l.scratch = s
		return model.EmptyLabels()
	}
	return l.build(kind, s)
}

// grouped returns the labels kept by a by (without=false) or without
// grouping; the error labels are always kept.
func (l *Labels) grouped(names []string, without bool) model.Labels {
	s := l.scratch[:0]
	for i := range l.entries {
		e := &l.entries[i]
		if slices.Contains(names, e.name) != without {
			if e.cat == catStream && e.value == "" {
				continue
			}
			s = append(s, model.Label{Name: e.name, Value: e.value})
		}
	}
	s = l.appendErrors(s)
	if len(s) == 0 {
		l.scratch = s
		return model.EmptyLabels()
	}
	return l.build(kindGrouped, s)
}

func (l *Labels) appendErrors(s []model.Label) []model.Label {
	if l.err != "" {
		s = append(s, model.Label{Name: ErrorLabel, Value: l.err})
	}
	if l.errDetails != "" {
		s = append(s, model.Label{Name: ErrorDetailsLabel, Value: l.errDetails})
	}
	return s
}

// build sorts s and returns it as Labels, from the cache when this stream
// built the same set before.
func (l *Labels) build(kind uint8, s []model.Label) model.Labels {
	slices.SortFunc(s, func(a, b model.Label) int { return strings.Compare(a.Name, b.Name) })
	l.scratch = s
	return l.cached(kind, s)
}

// cached returns the sorted s as Labels, from the cache when this stream
// built the same set before.
func (l *Labels) cached(kind uint8, s []model.Label) model.Labels {
	h := l.hashBuf[:0]
	h = append(h, kind)
	for _, lb := range s {
		h = append(h, lb.Name...)
		h = append(h, 0xff)
		h = append(h, lb.Value...)
		h = append(h, 0xff)
	}
	l.hashBuf = h
	key := xxhash.Sum64(h)
	if ls, ok := l.cache[key]; ok {
		return ls
	}
	ls := labels.New(s...)
	if len(l.cache) >= maxCachedLabelSets {
		clear(l.cache)
	}
	l.cache[key] = ls
	return ls
}

// normalizeMetadataName makes a structured metadata key a valid label name
// (invalid characters become "_"), as Loki does before pipelines see it.
func normalizeMetadataName(name string) string {
	if isLabelName(name) {
		return name
	}
	return sanitizeKey(name)
}

func isLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

func isNameByte(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// appendSanitized appends key to dst as a label-name fragment: surrounding
// white space is trimmed, a leading digit gets a "_" prefix and every rune
// outside [a-zA-Z0-9_] becomes "_" (Loki's key sanitisation, LQ-P1).
func appendSanitized(dst, key []byte) []byte {
	key = trimSpace(key)
	if len(key) == 0 {
		return dst
	}
	if key[0] >= '0' && key[0] <= '9' {
		dst = append(dst, '_')
	}
	for i := 0; i < len(key); {
		c := key[i]
		if c < 0x80 {
			if isNameByte(c) {
				dst = append(dst, c)
			} else {
				dst = append(dst, '_')
			}
			i++
			continue
		}
		// One "_" per rune (or per invalid byte).
		_, size := utf8.DecodeRune(key[i:])
		dst = append(dst, '_')
		i += size
	}
	return dst
}

func sanitizeKey(key string) string {
	return string(appendSanitized(nil, []byte(key)))
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

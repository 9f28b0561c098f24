package pipeline

import (
	"bytes"
	"errors"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// Errors of the JSON scanner. Their texts become __error_details__ and are
// the ones Loki reports, so they keep Loki's capitalisation.
var (
	errJSONObject  = errors.New("Value looks like object, but can't find closing '}' symbol")   //nolint:staticcheck // Loki's text
	errJSONString  = errors.New("Value is string, but can't find closing '\"' symbol")          //nolint:staticcheck // Loki's text
	errJSONArray   = errors.New("Value is array, but can't find closing ']' symbol")            //nolint:staticcheck // Loki's text
	errJSONValue   = errors.New("Value looks like Number/Boolean/None, but can't find its end") //nolint:staticcheck // Loki's text
	errJSONUnknown = errors.New("Unknown value type")                                           //nolint:staticcheck // Loki's text
	errJSONEscape  = errors.New("Encountered an invalid escape sequence in a string")           //nolint:staticcheck // Loki's text
	// errStop ends a scan early once every required label was found.
	errStop = errors.New("stop")
)

// maxJSONDepth bounds the nesting the parser descends into; deeper objects
// are skipped (not extracted).
const maxJSONDepth = 256

// jsonScanner is a forward-only, non-validating JSON tokenizer over one line,
// as lenient as the scanner Loki uses: it checks structure (quotes, braces,
// separators) but not number syntax, and ignores text after the top-level
// value.
type jsonScanner struct {
	data []byte
	pos  int
}

func (s *jsonScanner) skipWS() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the byte at pos, or 0 at the end.
func (s *jsonScanner) peek() byte {
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

// readString reads a string whose opening quote is at pos and returns its
// raw content (escapes not decoded) and whether it contains a backslash.
func (s *jsonScanner) readString() (raw []byte, escaped bool, err error) {
	start := s.pos + 1
	i := start
	for {
		j := bytes.IndexByte(s.data[i:], '"')
		if j < 0 {
			s.pos = len(s.data)
			return nil, false, errJSONString
		}
		i += j
		// An odd run of backslashes before the quote escapes it.
		n := 0
		for k := i - 1; k >= start && s.data[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			break
		}
		i++
	}
	raw = s.data[start:i]
	s.pos = i + 1
	return raw, bytes.IndexByte(raw, '\\') >= 0, nil
}

// skipContainer skips an object or array starting at pos.
func (s *jsonScanner) skipContainer() error {
	open := s.data[s.pos]
	depth := 0
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case '"':
			if _, _, err := s.readString(); err != nil {
				return err
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				s.pos++
				return nil
			}
		}
		s.pos++
	}
	if open == '[' {
		return errJSONArray
	}
	return errJSONObject
}

// readScalar reads a number or literal at pos and returns its bytes.
func (s *jsonScanner) readScalar() ([]byte, error) {
	start := s.pos
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return s.data[start:s.pos], nil
		}
		s.pos++
	}
	return s.data[start:s.pos], errJSONValue
}

// jsonKind is the type of a value the scanner found.
type jsonKind uint8

const (
	jsonString jsonKind = iota
	jsonNumber
	jsonTrue
	jsonFalse
	jsonNull
	jsonObject
	jsonArray
)

// scalarKind classifies a number or literal token.
func scalarKind(tok []byte) (jsonKind, error) {
	if len(tok) == 0 {
		return 0, errJSONUnknown
	}
	switch c := tok[0]; {
	case c == '-' || (c >= '0' && c <= '9'):
		return jsonNumber, nil
	case c == 't':
		if string(tok) == "true" {
			return jsonTrue, nil
		}
	case c == 'f':
		if string(tok) == "false" {
			return jsonFalse, nil
		}
	case c == 'n':
		if string(tok) == "null" {
			return jsonNull, nil
		}
	default:
		return 0, errJSONUnknown
	}
	return 0, errJSONValue
}

// appendUnescaped decodes the JSON escapes of a raw string into dst. Invalid
// UTF-8 and U+FFFD are dropped, since label values must be valid UTF-8.
func appendUnescaped(dst, raw []byte) ([]byte, error) {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			if c < utf8.RuneSelf {
				dst = append(dst, c)
				i++
				continue
			}
			r, size := utf8.DecodeRune(raw[i:])
			if r != utf8.RuneError {
				dst = append(dst, raw[i:i+size]...)
			}
			i += size
			continue
		}
		if i+1 >= len(raw) {
			return dst, errJSONEscape
		}
		switch raw[i+1] {
		case '"', '\\', '/':
			dst = append(dst, raw[i+1])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, n := decodeU(raw[i:])
			if n == 0 {
				return dst, errJSONEscape
			}
			if r != utf8.RuneError {
				dst = utf8.AppendRune(dst, r)
			}
			i += n
			continue
		default:
			return dst, errJSONEscape
		}
		i += 2
	}
	return dst, nil
}

// decodeU decodes \uXXXX (and a following low surrogate) at the start of b.
func decodeU(b []byte) (rune, int) {
	r, ok := hex4(b)
	if !ok {
		return 0, 0
	}
	if r >= 0xD800 && r < 0xDC00 {
		if r2, ok := hex4(b[6:]); ok && r2 >= 0xDC00 && r2 < 0xE000 {
			return (r-0xD800)<<10 + (r2 - 0xDC00) + 0x10000, 12
		}
		return utf8.RuneError, 6
	}
	return r, 6
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range b[2:6] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// stringValue turns a raw JSON string into a label value: the raw bytes
// themselves when they need no decoding (the value then aliases the line),
// else a decoded copy in the line's arena. An invalid escape gives "", as in
// Loki.
func (l *Labels) stringValue(raw []byte, escaped bool) string {
	if !escaped && validLabelValue(raw) {
		if len(raw) == 0 {
			return ""
		}
		return unsafe.String(&raw[0], len(raw))
	}
	start := len(l.arena)
	out, err := appendUnescaped(l.arena, raw)
	if err != nil {
		l.arena = out[:start]
		return ""
	}
	l.arena = out
	if len(out) == start {
		return ""
	}
	return unsafe.String(&out[start], len(out)-start)
}

// rawValue returns raw JSON text (a number token, an object or array) as a
// label value: aliasing the line when it is valid UTF-8, else a copy without
// the invalid bytes.
func (l *Labels) rawValue(b []byte) string {
	if validLabelValue(b) {
		return bytesString(b)
	}
	start := len(l.arena)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError {
			l.arena = append(l.arena, b[i:i+size]...)
		}
		i += size
	}
	if len(l.arena) == start {
		return ""
	}
	return unsafe.String(&l.arena[start], len(l.arena)-start)
}

// validLabelValue reports whether b is valid UTF-8 without U+FFFD.
func validLabelValue(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] >= utf8.RuneSelf {
			return utf8.Valid(b) && !bytes.Contains(b, []byte("\uFFFD"))
		}
	}
	return true
}

func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// jsonObj caches, per stream, how the keys of one JSON object (the line, or
// an object nested under a given path) map to label names.
type jsonObj struct {
	prefix   []byte // sanitized label-name prefix of the object's keys ("" at the top)
	children map[string]*jsonKey
	// seq holds the keys in the order the last line had them: lines of a
	// stream usually repeat their keys in the same order, so the i-th key
	// is checked against seq[i] before the map.
	seq []*jsonKey
}

// jsonKey is what the parser does with one key of an object.
type jsonKey struct {
	raw string // the key as written (escapes not decoded)
	// name is the label name for a scalar value; "" when not extracted.
	name     string
	required bool
	// obj is the cache for an object value, built on first use; skip is
	// set when no needed label can be under it.
	obj  *jsonObj
	skip bool
}

// maxCachedKeys bounds each object's key cache (keys beyond it are resolved
// on every line).
const maxCachedKeys = 1024

// jsonProc is the per-stream `| json` parser without parameters (LQ-P1):
// every scalar becomes a label, nested objects are flattened with "_",
// arrays and nulls are skipped.
type jsonProc struct {
	h       *hints
	root    *jsonObj
	scratch []byte
	lbls    *Labels
}

func newJSONProc(h *hints, l *Labels) *jsonProc {
	return &jsonProc{h: h, root: &jsonObj{children: map[string]*jsonKey{}}, lbls: l}
}

func (p *jsonProc) process(_ int64, line []byte, l *Labels) ([]byte, bool) {
	if p.h != nil && p.h.none {
		return line, true
	}
	s := jsonScanner{data: line}
	s.skipWS()
	if s.peek() != '{' {
		l.setErr(ErrJSON, errJSONObject.Error())
		return line, true
	}
	if err := p.object(&s, p.root, 0); err != nil && err != errStop {
		l.setErr(ErrJSON, err.Error())
	}
	return line, true
}

// object parses the object at s.pos, extracting its keys as described by
// obj.
func (p *jsonProc) object(s *jsonScanner, obj *jsonObj, depth int) error {
	s.pos++ // '{'
	s.skipWS()
	if s.peek() == '}' {
		s.pos++
		return nil
	}
	for i := 0; ; i++ {
		if s.peek() != '"' {
			return errJSONObject
		}
		rawKey, keyEsc, err := s.readString()
		if err != nil {
			return err
		}
		s.skipWS()
		if s.peek() != ':' {
			return errJSONObject
		}
		s.pos++
		s.skipWS()
		var key *jsonKey
		if i < len(obj.seq) && obj.seq[i].raw == bytesString(rawKey) {
			key = obj.seq[i]
		} else {
			key = p.key(obj, rawKey, keyEsc)
			if key != nil {
				switch {
				case i < len(obj.seq):
					obj.seq[i] = key
				case i == len(obj.seq) && i < maxCachedKeys:
					obj.seq = append(obj.seq, key)
				}
			}
		}
		switch c := s.peek(); c {
		case '"':
			raw, esc, err := s.readString()
			if err != nil {
				return err
			}
			if key != nil && key.name != "" {
				if err := p.set(key, p.lbls.stringValue(raw, esc)); err != nil {
					return err
				}
			}
		case '{':
			if key == nil || key.skip || depth >= maxJSONDepth {
				if err := s.skipContainer(); err != nil {
					return err
				}
				break
			}
			if key.obj == nil {
				p.childObj(obj, key, rawKey, keyEsc)
			}
			if key.skip {
				if err := s.skipContainer(); err != nil {
					return err
				}
				break
			}
			if err := p.object(s, key.obj, depth+1); err != nil {
				return err
			}
		case '[':
			if err := s.skipContainer(); err != nil {
				return err
			}
		case 0:
			return errJSONObject
		default:
			tok, err := s.readScalar()
			if err != nil {
				return err
			}
			kind, err := scalarKind(tok)
			if err != nil {
				return err
			}
			if key == nil || key.name == "" {
				break
			}
			switch kind {
			case jsonNumber:
				err = p.set(key, p.lbls.rawValue(tok))
			case jsonTrue:
				err = p.set(key, "true")
			case jsonFalse:
				err = p.set(key, "false")
			}
			if err != nil {
				return err
			}
		}
		s.skipWS()
		switch s.peek() {
		case ',':
			s.pos++
			s.skipWS()
		case '}':
			s.pos++
			return nil
		default:
			return errJSONObject
		}
	}
}

func (p *jsonProc) set(key *jsonKey, value string) error {
	if p.lbls.extract(key.name, value) && key.required {
		p.lbls.extractedRequired++
		if p.h.allExtracted(p.lbls) {
			return errStop
		}
	}
	return nil
}

// key returns the cached handling of a key of obj, creating it on first
// sight; nil for an empty key.
func (p *jsonProc) key(obj *jsonObj, raw []byte, escaped bool) *jsonKey {
	if escaped {
		dec, err := appendUnescaped(p.scratch[:0], raw)
		if err != nil {
			return nil
		}
		p.scratch = dec
		raw = dec
	}
	if k, ok := obj.children[bytesString(raw)]; ok {
		return k
	}
	k := &jsonKey{raw: string(raw)}
	name := p.labelName(obj.prefix, raw)
	if name != "" {
		if p.lbls.baseHas(name) {
			name += extractedSuffix
		}
		if p.h.shouldExtract(name) {
			k.name = name
			k.required = p.h.isRequired(name)
		}
	}
	if len(obj.children) < maxCachedKeys {
		obj.children[string(raw)] = k
	}
	return k
}

// labelName is the sanitized, prefixed name of a key; "" when that is not a
// label name.
func (p *jsonProc) labelName(prefix, raw []byte) string {
	var b []byte
	b = append(b, prefix...)
	if len(prefix) > 0 {
		b = append(b, '_')
	}
	b = appendSanitized(b, raw)
	if len(b) == 0 {
		return ""
	}
	return string(b)
}

// childObj creates the cache of the object under key.
func (p *jsonProc) childObj(parent *jsonObj, key *jsonKey, raw []byte, escaped bool) {
	if escaped {
		dec, err := appendUnescaped(nil, raw)
		if err != nil {
			key.skip = true
			return
		}
		raw = dec
	}
	var prefix []byte
	prefix = append(prefix, parent.prefix...)
	if len(prefix) > 0 {
		prefix = append(prefix, '_')
	}
	prefix = appendSanitized(prefix, raw)
	key.obj = &jsonObj{prefix: prefix, children: map[string]*jsonKey{}}
	key.skip = !p.h.shouldExtractPrefix(string(prefix))
}

// jsonPathElem is one step of a `| json label="a.b[0]"` expression: an object
// key or an array index.
type jsonPathElem struct {
	key   string
	index int // when key == "" and isIndex
	isIdx bool
}

// parseJSONPath parses a json parser expression: field access (`a.b`,
// `a["b c"]`) and array access (`a[0]`) in any combination (LQ-P2).
func parseJSONPath(expr string) ([]jsonPathElem, error) {
	var out []jsonPathElem
	i := 0
	isIdentStart := func(c byte) bool { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
	for i < len(expr) {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '.':
			i++
		case isIdentStart(c):
			j := i
			for j < len(expr) && (isIdentStart(expr[j]) || (expr[j] >= '0' && expr[j] <= '9')) {
				j++
			}
			out = append(out, jsonPathElem{key: expr[i:j]})
			i = j
		case c == '[':
			i++
			for i < len(expr) && expr[i] == ' ' {
				i++
			}
			if i < len(expr) && expr[i] == '"' {
				j := i + 1
				for j < len(expr) && expr[j] != '"' && expr[j] != ']' {
					j++
				}
				out = append(out, jsonPathElem{key: expr[i+1 : j]})
				if j < len(expr) && expr[j] == '"' {
					j++
				}
				i = j
			} else {
				j := i
				for j < len(expr) && expr[j] >= '0' && expr[j] <= '9' {
					j++
				}
				if j == i {
					return nil, errors.New("expecting an index or a quoted key after '['")
				}
				n, err := strconv.Atoi(expr[i:j])
				if err != nil {
					return nil, err
				}
				out = append(out, jsonPathElem{index: n, isIdx: true})
				i = j
			}
			for i < len(expr) && expr[i] == ' ' {
				i++
			}
			if i >= len(expr) || expr[i] != ']' {
				return nil, errors.New("missing ']'")
			}
			i++
		default:
			return nil, errors.New("unexpected char " + strconv.QuoteRune(rune(c)))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("empty expression")
	}
	return out, nil
}

// jsonExprProc is `| json a="x.y", b="arr[0]"` (LQ-P2): only the listed
// values are extracted; objects and arrays as their JSON text, a missing
// value as "".
type jsonExprProc struct {
	ids   []string
	names []string // ids, renamed with _extracted when the stream has them
	paths [][]jsonPathElem
}

func (p *jsonExprProc) process(_ int64, line []byte, l *Labels) ([]byte, bool) {
	if len(line) == 0 {
		return line, true
	}
	switch line[0] {
	case '"', '{', '[':
	default:
		l.setErr(ErrJSON, "")
		return line, true
	}
	for i, path := range p.paths {
		v, found, err := lookupJSON(line, path, l)
		if err != nil {
			l.setErr(ErrJSON, err.Error())
			continue
		}
		if found {
			l.set(catParsed, p.names[i], v)
		}
	}
	for _, id := range p.ids {
		if _, _, ok := l.get(id); !ok {
			l.set(catParsed, id, "")
		}
	}
	return line, true
}

// lookupJSON finds the value at path in a JSON document.
func lookupJSON(data []byte, path []jsonPathElem, l *Labels) (string, bool, error) {
	s := jsonScanner{data: data}
	s.skipWS()
	for _, el := range path {
		if el.isIdx {
			if s.peek() != '[' {
				return "", false, nil
			}
			s.pos++
			s.skipWS()
			for n := 0; ; n++ {
				if s.peek() == ']' || s.pos >= len(s.data) {
					return "", false, nil
				}
				if n == el.index {
					break
				}
				if err := skipValue(&s); err != nil {
					return "", false, err
				}
				s.skipWS()
				if s.peek() != ',' {
					return "", false, nil
				}
				s.pos++
				s.skipWS()
			}
			continue
		}
		if s.peek() != '{' {
			return "", false, nil
		}
		s.pos++
		s.skipWS()
		for {
			if s.peek() != '"' {
				return "", false, nil
			}
			raw, esc, err := s.readString()
			if err != nil {
				return "", false, err
			}
			s.skipWS()
			if s.peek() != ':' {
				return "", false, errJSONObject
			}
			s.pos++
			s.skipWS()
			match := false
			if esc {
				dec, err := appendUnescaped(nil, raw)
				match = err == nil && string(dec) == el.key
			} else {
				match = string(raw) == el.key
			}
			if match {
				break
			}
			if err := skipValue(&s); err != nil {
				return "", false, err
			}
			s.skipWS()
			if s.peek() != ',' {
				return "", false, nil
			}
			s.pos++
			s.skipWS()
		}
	}
	switch c := s.peek(); c {
	case '"':
		raw, esc, err := s.readString()
		if err != nil {
			return "", false, err
		}
		return l.stringValue(raw, esc), true, nil
	case '{', '[':
		start := s.pos
		if err := s.skipContainer(); err != nil {
			return "", false, err
		}
		return l.rawValue(s.data[start:s.pos]), true, nil
	case 0:
		return "", false, nil
	default:
		tok, err := s.readScalar()
		if err != nil && len(tok) == 0 {
			return "", false, err
		}
		kind, kerr := scalarKind(tok)
		if kerr != nil {
			return "", false, kerr
		}
		if kind == jsonNull {
			return "", true, nil
		}
		return l.rawValue(tok), true, nil
	}
}

func skipValue(s *jsonScanner) error {
	switch s.peek() {
	case '"':
		_, _, err := s.readString()
		return err
	case '{', '[':
		return s.skipContainer()
	case 0:
		return errJSONValue
	default:
		tok, err := s.readScalar()
		if err != nil && len(tok) == 0 {
			return err
		}
		_, err = scalarKind(tok)
		return err
	}
}

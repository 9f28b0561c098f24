package stages

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ledgerlog/ledgerlog/internal/jsonenc"
)

// This file is the json stage's fast path. Most JMESPath expressions in
// Promtail configs are plain field paths: `level`, `fields.message`,
// `"span-name"`. For those, decoding the whole line into a map (two thirds
// of the stage's time) is replaced by one pass of a validating scanner that
// keeps only the byte ranges of the requested values and converts just
// those. The result must equal the full path's for every input:
// FuzzJSONFastPath checks that.
//
// The full path accepts a line when encoding/json unmarshals it into a
// map[string]any, so the scanner accepts exactly that: RFC 8259 syntax,
// nesting depth at most 10000, every number within float64 range, a top
// level object or null (null extracts nil for every expression). Invalid
// UTF-8 in strings is allowed (encoding/json replaces it). Duplicate keys
// are allowed and the last one wins, also for the objects a path descends
// into.

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

// parseFieldPath reports whether a JMESPath expression is a plain field
// path (identifiers, quoted or not, joined by dots, no whitespace) and
// returns its keys.
func parseFieldPath(expr string) ([]string, bool) {
	var keys []string
	i := 0
	for {
		if i >= len(expr) {
			return nil, false
		}
		switch c := expr[i]; {
		case c == '"':
			j := i + 1
			for j < len(expr) && expr[j] != '"' {
				if expr[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(expr) {
				return nil, false
			}
			var k string
			if err := json.Unmarshal([]byte(expr[i:j+1]), &k); err != nil {
				return nil, false
			}
			keys = append(keys, k)
			i = j + 1
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i + 1
			for j < len(expr) && (expr[j] == '_' || expr[j] >= 'a' && expr[j] <= 'z' || expr[j] >= 'A' && expr[j] <= 'Z' || expr[j] >= '0' && expr[j] <= '9') {
				j++
			}
			keys = append(keys, expr[i:j])
			i = j
		default:
			return nil, false
		}
		if i == len(expr) {
			return keys, true
		}
		if expr[i] != '.' {
			return nil, false
		}
		i++
	}
}

// pathNode is one key of the requested paths: a trie over keys.
type pathNode struct {
	keys     []string    // child keys
	children []*pathNode // parallel to keys
	exprs    []int       // expressions whose path ends here
	subtree  []int       // expressions whose path passes through or ends here
}

func (n *pathNode) child(key string) *pathNode {
	for i, k := range n.keys {
		if k == key {
			return n.children[i]
		}
	}
	return nil
}

// valueKind is the JSON type of an extracted value.
type valueKind uint8

const (
	kindMissing valueKind = iota
	kindString
	kindNumber
	kindTrue
	kindFalse
	kindNull
	kindObject
	kindArray
)

// rawValue is where one expression's value sits in the line.
type rawValue struct {
	kind       valueKind
	start, end int
	plain      bool // a string without escapes whose bytes are valid UTF-8
}

// jsonFastPath extracts the values of plain field paths from a JSON object.
// extract is not safe for concurrent use (it reuses its scratch state); the
// json stage calls it under the pipeline lock.
type jsonFastPath struct {
	root    *pathNode
	results []rawValue
	enc     []byte   // scratch for re-encoded objects and arrays
	members []member // scratch for appendCanonical
}

// newJSONFastPath returns a fast path for the expressions, or nil when one
// of them is not a plain field path.
func newJSONFastPath(exprs []jsonExpr) *jsonFastPath {
	root := &pathNode{}
	for i, x := range exprs {
		keys, ok := parseFieldPath(x.expr)
		if !ok {
			return nil
		}
		n := root
		for _, k := range keys {
			c := n.child(k)
			if c == nil {
				c = &pathNode{}
				n.keys = append(n.keys, k)
				n.children = append(n.children, c)
			}
			c.subtree = append(c.subtree, i)
			n = c
		}
		n.exprs = append(n.exprs, i)
	}
	return &jsonFastPath{root: root, results: make([]rawValue, len(exprs))}
}

// extract scans line and fills f.results; false means the line is not
// what the full path accepts (malformed).
func (f *jsonFastPath) extract(line string) bool {
	for i := range f.results {
		f.results[i] = rawValue{}
	}
	s := jsonScanner{s: line, f: f}
	s.skipWS()
	if s.i < len(s.s) && s.s[s.i] == 'n' {
		// null unmarshals into a nil map: every expression matches nothing
		if !s.literal("null") {
			return false
		}
	} else {
		if s.i >= len(s.s) || s.s[s.i] != '{' {
			return false
		}
		if !s.object(f.root, 0) {
			return false
		}
	}
	s.skipWS()
	return s.i == len(s.s)
}

// value converts result i to what the full path stores. ok is false when
// the conversion failed (the full path then leaves the key unset).
func (f *jsonFastPath) value(line string, i int) (any, bool) {
	r := f.results[i]
	raw := line[r.start:r.end]
	switch r.kind {
	case kindMissing, kindNull:
		return nil, true
	case kindString:
		if r.plain {
			return raw[1 : len(raw)-1], true
		}
		var s string
		if err := json.Unmarshal([]byte(raw), &s); err != nil {
			return nil, false
		}
		return s, true
	case kindNumber:
		v, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return nil, false
		}
		return v, true
	case kindTrue:
		return true, true
	case kindFalse:
		return false, true
	}
	// objects and arrays: stored as the full path stores them, re-encoded
	// as json.Marshal encodes what json.Unmarshal decoded
	f.enc = appendCanonical(f.enc[:0], raw, &f.members)
	return string(f.enc), true
}

// member is one key of an object being re-encoded.
type member struct {
	key string // decoded
	raw string // the value's raw text
}

// appendCanonical appends raw (a valid JSON value) re-encoded the way
// json.Marshal encodes the value json.Unmarshal decodes from it: object
// keys sorted and unique (the last one wins), numbers as float64, strings
// with invalid UTF-8 replaced and HTML characters escaped, no whitespace.
// scratch holds the members of the objects being encoded.
func appendCanonical(dst []byte, raw string, scratch *[]member) []byte {
	s := jsonScanner{s: raw}
	s.skipWS()
	return s.canonical(dst, scratch)
}

// canonical re-encodes the value at s.i and moves past it.
func (s *jsonScanner) canonical(dst []byte, scratch *[]member) []byte {
	switch c := s.s[s.i]; {
	case c == '{':
		s.i++
		base := len(*scratch)
		s.skipWS()
		for s.s[s.i] != '}' {
			kstart := s.i
			plain, _ := s.str()
			key := s.s[kstart+1 : s.i-1]
			if !plain {
				key = unquote(s.s[kstart:s.i])
			}
			s.skipWS()
			s.i++ // ':'
			s.skipWS()
			vstart := s.i
			s.value(nil, 0)
			*scratch = append(*scratch, member{key: key, raw: s.s[vstart:s.i]})
			s.skipWS()
			if s.s[s.i] == ',' {
				s.i++
				s.skipWS()
			}
		}
		s.i++
		ms := (*scratch)[base:]
		// sort by key, keeping the order of equal keys: the last wins
		slices.SortStableFunc(ms, func(a, b member) int { return strings.Compare(a.key, b.key) })
		dst = append(dst, '{')
		first := true
		for i, m := range ms {
			if i+1 < len(ms) && ms[i+1].key == m.key {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = jsonenc.AppendString(dst, m.key)
			dst = append(dst, ':')
			sub := jsonScanner{s: m.raw}
			dst = sub.canonical(dst, scratch)
		}
		*scratch = (*scratch)[:base]
		return append(dst, '}')
	case c == '[':
		s.i++
		dst = append(dst, '[')
		s.skipWS()
		first := true
		for s.s[s.i] != ']' {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = s.canonical(dst, scratch)
			s.skipWS()
			if s.s[s.i] == ',' {
				s.i++
				s.skipWS()
			}
		}
		s.i++
		return append(dst, ']')
	case c == '"':
		start := s.i
		plain, _ := s.str()
		if plain {
			return jsonenc.AppendString(dst, s.s[start+1:s.i-1])
		}
		return jsonenc.AppendString(dst, unquote(s.s[start:s.i]))
	case c == 't':
		s.i += 4
		return append(dst, "true"...)
	case c == 'f':
		s.i += 5
		return append(dst, "false"...)
	case c == 'n':
		s.i += 4
		return append(dst, "null"...)
	}
	start := s.i
	s.number()
	v, _ := strconv.ParseFloat(s.s[start:s.i], 64)
	return appendJSONFloat(dst, v)
}

// unquote decodes a valid JSON string literal as encoding/json does.
func unquote(lit string) string {
	var v string
	_ = json.Unmarshal([]byte(lit), &v)
	return v
}

// appendJSONFloat formats a float64 as encoding/json does.
func appendJSONFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// jsonScanner validates JSON the way encoding/json does and records the
// requested values on the way.
type jsonScanner struct {
	s string
	i int
	f *jsonFastPath
}

func (s *jsonScanner) skipWS() {
	for s.i < len(s.s) {
		switch s.s[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) literal(lit string) bool {
	if len(s.s)-s.i < len(lit) || s.s[s.i:s.i+len(lit)] != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// object scans an object starting at '{'. node is the trie node whose
// children are looked for among its keys (nil: none).
func (s *jsonScanner) object(node *pathNode, depth int) bool {
	depth++
	if depth > maxJSONDepth {
		return false
	}
	s.i++ // '{'
	s.skipWS()
	if s.i < len(s.s) && s.s[s.i] == '}' {
		s.i++
		return true
	}
	for {
		if s.i >= len(s.s) || s.s[s.i] != '"' {
			return false
		}
		kstart := s.i
		plain, ok := s.str()
		if !ok {
			return false
		}
		var child *pathNode
		if node != nil && len(node.keys) > 0 {
			child = s.lookup(node, s.s[kstart+1:s.i-1], plain)
		}
		s.skipWS()
		if s.i >= len(s.s) || s.s[s.i] != ':' {
			return false
		}
		s.i++
		s.skipWS()
		if child != nil {
			// a repeated key replaces the earlier value, with everything
			// the earlier one held
			for _, x := range child.subtree {
				s.f.results[x] = rawValue{}
			}
		}
		if !s.value(child, depth) {
			return false
		}
		s.skipWS()
		if s.i >= len(s.s) {
			return false
		}
		switch s.s[s.i] {
		case ',':
			s.i++
			s.skipWS()
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// lookup finds the child of node named by a key's raw text (without its
// quotes). plain keys compare as they are; others are decoded first.
func (s *jsonScanner) lookup(node *pathNode, raw string, plain bool) *pathNode {
	if plain {
		return node.child(raw)
	}
	var k string
	if err := json.Unmarshal([]byte(`"`+raw+`"`), &k); err != nil {
		return nil
	}
	return node.child(k)
}

// value scans one value; node is its trie node (nil when not requested).
func (s *jsonScanner) value(node *pathNode, depth int) bool {
	if s.i >= len(s.s) {
		return false
	}
	start := s.i
	var kind valueKind
	plain := false
	switch c := s.s[s.i]; {
	case c == '{':
		if !s.object(node, depth) {
			return false
		}
		kind = kindObject
	case c == '[':
		if !s.array(depth) {
			return false
		}
		kind = kindArray
	case c == '"':
		var ok bool
		if plain, ok = s.str(); !ok {
			return false
		}
		kind = kindString
	case c == 't':
		if !s.literal("true") {
			return false
		}
		kind = kindTrue
	case c == 'f':
		if !s.literal("false") {
			return false
		}
		kind = kindFalse
	case c == 'n':
		if !s.literal("null") {
			return false
		}
		kind = kindNull
	case c == '-' || c >= '0' && c <= '9':
		if !s.number() {
			return false
		}
		kind = kindNumber
	default:
		return false
	}
	if node != nil {
		for _, x := range node.exprs {
			s.f.results[x] = rawValue{kind: kind, start: start, end: s.i, plain: plain}
		}
	}
	return true
}

func (s *jsonScanner) array(depth int) bool {
	depth++
	if depth > maxJSONDepth {
		return false
	}
	s.i++ // '['
	s.skipWS()
	if s.i < len(s.s) && s.s[s.i] == ']' {
		s.i++
		return true
	}
	for {
		if !s.value(nil, depth) {
			return false
		}
		s.skipWS()
		if s.i >= len(s.s) {
			return false
		}
		switch s.s[s.i] {
		case ',':
			s.i++
			s.skipWS()
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

// str scans a string starting at '"'. plain reports that it holds no
// escapes and its bytes are valid UTF-8, so its text is its raw bytes.
func (s *jsonScanner) str() (plain, ok bool) {
	i := s.i + 1
	plain = true
	ascii := true
	for i < len(s.s) {
		c := s.s[i]
		switch {
		case c == '"':
			if !ascii && plain {
				plain = utf8.ValidString(s.s[s.i+1 : i])
			}
			s.i = i + 1
			return plain, true
		case c == '\\':
			plain = false
			i++
			if i >= len(s.s) {
				return false, false
			}
			switch s.s[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+4 >= len(s.s) {
					return false, false
				}
				for _, h := range []byte(s.s[i+1 : i+5]) {
					if !isHex(h) {
						return false, false
					}
				}
				i += 5
			default:
				return false, false
			}
		case c < 0x20:
			return false, false
		default:
			if c >= utf8.RuneSelf {
				ascii = false
			}
			i++
		}
	}
	return false, false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// number scans a number and checks that it is within float64 range, as
// encoding/json's conversion to any does.
func (s *jsonScanner) number() bool {
	start := s.i
	i := s.i
	if s.s[i] == '-' {
		i++
	}
	if i >= len(s.s) {
		return false
	}
	switch {
	case s.s[i] == '0':
		i++
	case s.s[i] >= '1' && s.s[i] <= '9':
		for i < len(s.s) && s.s[i] >= '0' && s.s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s.s) && s.s[i] == '.' {
		i++
		if i >= len(s.s) || s.s[i] < '0' || s.s[i] > '9' {
			return false
		}
		for i < len(s.s) && s.s[i] >= '0' && s.s[i] <= '9' {
			i++
		}
	}
	exp := false
	if i < len(s.s) && (s.s[i] == 'e' || s.s[i] == 'E') {
		exp = true
		i++
		if i < len(s.s) && (s.s[i] == '+' || s.s[i] == '-') {
			i++
		}
		if i >= len(s.s) || s.s[i] < '0' || s.s[i] > '9' {
			return false
		}
		for i < len(s.s) && s.s[i] >= '0' && s.s[i] <= '9' {
			i++
		}
	}
	s.i = i
	if exp || i-start > 300 {
		// only an exponent or some 309 digits can leave float64's range
		if _, err := strconv.ParseFloat(s.s[start:i], 64); err != nil {
			return false
		}
	}
	return true
}

package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// DecodeJSON decodes a Loki v1 JSON push body:
//
//	{"streams":[{"stream":{"app":"api"},"values":[["<unix ns as a string>","line"],
//	                                             ["<ns>","line",{"trace_id":"abc"}]]}]}
//
// The optional third element of a value is the entry's structured metadata
// (string values only). Timestamps must be strings, as in Loki; a number is a
// 400. Errors are 400s worded after the jsoniter messages Loki sends.
//
// The result may alias body (strings without escapes are cut from it), so
// the caller must not modify body afterwards.
func DecodeJSON(body []byte) (*Request, error) {
	d := jsonDecoder{b: body}
	if len(body) > 0 {
		d.s = unsafe.String(&body[0], len(body))
	}
	req := &Request{Format: "json", BodySize: int64(len(body))}
	if err := d.pushRequest(req); err != nil {
		return nil, badRequest(err)
	}
	return req, nil
}

// jsonDecoder is a hand-written scanner for the push schema: it allocates
// nothing per entry except the structured metadata label set, and cuts
// strings without escapes straight from the body.
type jsonDecoder struct {
	b     []byte
	s     string // the same bytes as b
	i     int
	arena arena
	md    metadataBuilder
	pairs []labels.Label // stream label pairs of the current stream
	lbuf  []byte         // label string of the current stream
	key   []byte         // scratch for keys with escapes
	// keyEscaped reports that the last key read aliases key, not the body.
	keyEscaped bool
}

// errorf reports a syntax error at the current position in the shape of
// jsoniter's messages, which is what Loki's push handler returns.
func (d *jsonDecoder) errorf(op, format string, args ...any) error {
	head := min(d.i+1, len(d.b))
	peekStart, peekEnd := max(head-10, 0), min(head+10, len(d.b))
	ctxStart, ctxEnd := max(head-50, 0), min(head+50, len(d.b))
	return fmt.Errorf("%s: %s, error found in #%d byte of ...|%s|..., bigger context ...|%s|...",
		op, fmt.Sprintf(format, args...), head-peekStart, d.b[peekStart:peekEnd], d.b[ctxStart:ctxEnd])
}

func (d *jsonDecoder) found() string {
	if d.i >= len(d.b) {
		return "EOF"
	}
	return string(d.b[d.i])
}

func (d *jsonDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte, or 0 at the end.
func (d *jsonDecoder) peek() byte {
	d.ws()
	if d.i >= len(d.b) {
		return 0
	}
	return d.b[d.i]
}

// null consumes `null` if it is next.
func (d *jsonDecoder) null() bool {
	if d.peek() == 'n' && d.i+4 <= len(d.b) && string(d.b[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

// object iterates over the members of an object (or accepts null), calling
// member with the position at the start of each value.
func (d *jsonDecoder) object(op string, member func(key []byte) error) error {
	if d.null() {
		return nil
	}
	if d.peek() != '{' {
		return d.errorf(op, "expect { or n, but found %s", d.found())
	}
	d.i++
	if d.peek() == '}' {
		d.i++
		return nil
	}
	for {
		if d.peek() != '"' {
			return d.errorf(op, "expect \" after {, but found %s", d.found())
		}
		key, err := d.rawKey()
		if err != nil {
			return err
		}
		if d.peek() != ':' {
			return d.errorf(op, "expect : after object field, but found %s", d.found())
		}
		d.i++
		if err := member(key); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return d.errorf(op, "expect } or , after object field, but found %s", d.found())
		}
	}
}

// array iterates over the elements of an array (or accepts null).
func (d *jsonDecoder) array(op string, elem func(i int) error) error {
	if d.null() {
		return nil
	}
	if d.peek() != '[' {
		return d.errorf(op, "expect [ or n, but found %s", d.found())
	}
	d.i++
	if d.peek() == ']' {
		d.i++
		return nil
	}
	for n := 0; ; n++ {
		if err := elem(n); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return nil
		default:
			return d.errorf(op, "expect ] or , after array element, but found %s", d.found())
		}
	}
}

// rawKey reads an object key. The returned bytes are valid until the next
// call.
func (d *jsonDecoder) rawKey() ([]byte, error) {
	start, end, escaped, err := d.scanString()
	if err != nil {
		return nil, err
	}
	d.keyEscaped = escaped
	if !escaped {
		return d.b[start:end], nil
	}
	d.key = unescapeAppend(d.key[:0], d.b[start:end])
	return d.key, nil
}

// str reads a string (or null, as ""). Strings without escapes alias the
// body; others are unescaped into the arena.
func (d *jsonDecoder) str(op string) (string, error) {
	if d.null() {
		return "", nil
	}
	if d.peek() != '"' {
		return "", d.errorf(op, "expects \" or n, but found %s", d.found())
	}
	start, end, escaped, err := d.scanString()
	if err != nil {
		return "", err
	}
	if !escaped {
		return d.s[start:end], nil
	}
	raw := d.b[start:end]
	out := d.arena.alloc(unescapedLen(raw))
	out = unescapeAppend(out[:0], raw)
	return str(out), nil
}

// stringSpecial marks the bytes that end the fast scan of a string: the
// closing quote, a backslash and control characters (which JSON forbids).
var stringSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// scanString consumes a string whose opening quote is at d.i and returns the
// bounds of its contents.
func (d *jsonDecoder) scanString() (start, end int, escaped bool, err error) {
	d.i++
	start = d.i
	b := d.b
	i := start
	for {
		for i < len(b) && !stringSpecial[b[i]] {
			i++
		}
		if i >= len(b) {
			d.i = len(b)
			return 0, 0, false, d.errorf("ReadString", "expects \" or n, but found EOF")
		}
		switch c := b[i]; {
		case c == '"':
			d.i = i + 1
			return start, i, escaped, nil
		case c == '\\':
			escaped = true
			i++
			if i >= len(b) {
				continue
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+4 >= len(b) || !isHex4(b[i+1:i+5]) {
					d.i = i
					return 0, 0, false, d.errorf("readEscapedChar", "invalid escape char after \\")
				}
				i += 5
			default:
				d.i = i
				return 0, 0, false, d.errorf("readEscapedChar", "invalid escape char after \\")
			}
		default:
			d.i = i
			return 0, 0, false, d.errorf("ReadString", "invalid control character found: %d", c)
		}
	}
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unescapedLen is an upper bound of the unescaped length of a validated
// string body.
func unescapedLen(raw []byte) int { return len(raw) }

// unescapeAppend appends the unescaped form of a string body that
// scanString validated.
func unescapeAppend(dst, raw []byte) []byte {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			// Copy the run up to the next escape at once.
			j := bytes.IndexByte(raw[i:], '\\')
			if j < 0 {
				return append(dst, raw[i:]...)
			}
			dst = append(dst, raw[i:i+j]...)
			i += j
		}
		i++
		switch raw[i] {
		case '"', '\\', '/':
			dst = append(dst, raw[i])
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
			r := hex4(raw[i+1:])
			i += 4 // at the last hex digit
			if utf16.IsSurrogate(r) {
				// A surrogate must pair with a following \uXXXX; a lone one
				// becomes U+FFFD, as encoding/json does.
				dec := utf8.RuneError
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' && isHex4(raw[i+3:]) {
					if dec = utf16.DecodeRune(r, hex4(raw[i+3:])); dec != utf8.RuneError {
						i += 6
					}
				}
				r = dec
			}
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst
}

// skip consumes any JSON value.
func (d *jsonDecoder) skip() error {
	switch c := d.peek(); c {
	case '"':
		_, _, _, err := d.scanString()
		return err
	case '{':
		return d.object("Skip", func([]byte) error { return d.skip() })
	case '[':
		return d.array("Skip", func(int) error { return d.skip() })
	case 't', 'f', 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if d.i+len(lit) <= len(d.b) && string(d.b[d.i:d.i+len(lit)]) == lit {
				d.i += len(lit)
				return nil
			}
		}
		return d.errorf("Skip", "invalid literal")
	default:
		if c == '-' || c >= '0' && c <= '9' {
			start := d.i
			for d.i < len(d.b) && strings.IndexByte("+-.eE0123456789", d.b[d.i]) >= 0 {
				d.i++
			}
			if _, err := strconv.ParseFloat(string(d.b[start:d.i]), 64); err != nil {
				return d.errorf("Skip", "invalid number")
			}
			return nil
		}
		return d.errorf("Skip", "do not know how to skip: %s", d.found())
	}
}

// keyIs compares a key as encoding/json does: exactly, else ignoring case.
func keyIs(key []byte, name string) bool {
	return string(key) == name || strings.EqualFold(string(key), name)
}

func (d *jsonDecoder) pushRequest(req *Request) error {
	err := d.object("ReadObjectCB", func(key []byte) error {
		if !keyIs(key, "streams") {
			return d.skip()
		}
		return d.array("ReadArrayCB", func(int) error { return d.stream(req) })
	})
	if he, ok := err.(*HTTPError); ok {
		return he // a label error, worded as Loki words it
	}
	if err != nil {
		return fmt.Errorf("loghttp.PushRequest.Streams: %w", err)
	}
	return nil
}

func (d *jsonDecoder) stream(req *Request) error {
	var entries []model.Entry
	d.pairs = d.pairs[:0]
	err := d.object("ReadObjectCB", func(key []byte) error {
		switch {
		case keyIs(key, "stream"):
			d.pairs = d.pairs[:0]
			return d.object("ReadMapCB", func(k []byte) error {
				name := d.internKey(k)
				v, err := d.str("ReadString")
				if err != nil {
					return err
				}
				d.pairs = append(d.pairs, labels.Label{Name: name, Value: v})
				return nil
			})
		case keyIs(key, "values"):
			return d.array("ReadArrayCB", func(int) error {
				e, err := d.entry()
				if err != nil {
					return err
				}
				entries = append(entries, e)
				return nil
			})
		default:
			return d.skip()
		}
	})
	if err != nil {
		return err
	}
	parsed, err := streamLabels.parse(d.labelString())
	if err != nil {
		return err
	}
	req.Streams = append(req.Streams, model.Stream{Labels: parsed.ls, Entries: entries})
	return nil
}

// labelString renders the stream's label map as Loki's LabelSet.String()
// does (sorted, `{a="b", c="d"}`), so that names invalid as label names fail
// to parse with the same message as in Loki. The result aliases a scratch
// buffer and is valid until the next stream.
func (d *jsonDecoder) labelString() string {
	slices.SortStableFunc(d.pairs, func(a, b labels.Label) int { return strings.Compare(a.Name, b.Name) })
	b := append(d.lbuf[:0], '{')
	first := true
	for i, p := range d.pairs {
		if i+1 < len(d.pairs) && d.pairs[i+1].Name == p.Name {
			continue // a JSON object repeating a key keeps the last value
		}
		if !first {
			b = append(b, ", "...)
		}
		first = false
		b = append(b, p.Name...)
		b = append(b, '=')
		b = strconv.AppendQuote(b, p.Value)
	}
	b = append(b, '}')
	d.lbuf = b
	return unsafe.String(&b[0], len(b))
}

func (d *jsonDecoder) entry() (model.Entry, error) {
	var e model.Entry
	d.md.reset()
	hasMetadata := false
	err := d.array("ReadArrayCB", func(i int) error {
		switch i {
		case 0:
			if d.peek() != '"' && !(d.peek() == 'n') {
				return d.errorf("ReadString", "expects \" or n, but found %s", d.found())
			}
			s, err := d.str("ReadString")
			if err != nil {
				return err
			}
			ts, err := parseNanos(s)
			if err != nil {
				return d.errorf("error reading entry timestamp", "%s", err.Error())
			}
			e.Timestamp = ts
		case 1:
			line, err := d.str("ReadString")
			if err != nil {
				return err
			}
			e.Line = line
		case 2:
			hasMetadata = true
			return d.object("ReadMapCB", func(k []byte) error {
				name := d.internKey(k)
				v, err := d.str("ReadString")
				if err != nil {
					return err
				}
				d.md.add(name, v)
				return nil
			})
		default:
			return d.errorf("error reading entry", "array must contains 2 values")
		}
		return nil
	})
	if err != nil {
		return e, err
	}
	if hasMetadata {
		e.Metadata = d.md.labels()
	}
	return e, nil
}

// internKey returns a metadata name as a string. Names are copied into the
// label set by metadataBuilder, so a view of the key bytes suffices while
// they are not overwritten: keys with escapes are copied to the arena.
func (d *jsonDecoder) internKey(k []byte) string {
	if len(k) == 0 {
		return ""
	}
	if d.keyEscaped {
		out := d.arena.alloc(len(k))
		copy(out, k)
		return str(out)
	}
	return unsafe.String(&k[0], len(k))
}

// parseNanos parses a decimal Unix-nanosecond timestamp as strconv.ParseInt
// does, without allocating on the common path.
func parseNanos(s string) (int64, error) {
	if n := len(s); n > 0 && n <= 18 {
		var v int64
		ok := true
		for i := 0; i < n; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				ok = false
				break
			}
			v = v*10 + int64(c-'0')
		}
		if ok {
			return v, nil
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// legacyPush is the /api/prom/push JSON body (Loki's v0 push format).
type legacyPush struct {
	Streams []struct {
		Labels  string `json:"labels"`
		Entries []struct {
			Timestamp time.Time `json:"ts"`
			Line      string    `json:"line"`
		} `json:"entries"`
	} `json:"streams"`
}

// DecodeLegacyJSON decodes the legacy /api/prom/push JSON body:
//
//	{"streams":[{"labels":"{app=\"api\"}","entries":[{"ts":"2024-01-02T03:04:05.000000006Z","line":"…"}]}]}
//
// The format is rare and old, so it is decoded with encoding/json.
func DecodeLegacyJSON(body []byte) (*Request, error) {
	var p legacyPush
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, badRequest(err)
	}
	req := &Request{Format: "legacy-json", BodySize: int64(len(body)), Streams: make([]model.Stream, 0, len(p.Streams))}
	for _, s := range p.Streams {
		parsed, err := streamLabels.parse(s.Labels)
		if err != nil {
			return nil, badRequest(err)
		}
		st := model.Stream{Labels: parsed.ls, Entries: make([]model.Entry, 0, len(s.Entries))}
		for _, e := range s.Entries {
			st.Entries = append(st.Entries, model.Entry{Timestamp: e.Timestamp.UnixNano(), Line: e.Line})
		}
		req.Streams = append(req.Streams, st)
		if parsed.dup != "" {
			req.markDuplicate(len(req.Streams)-1, s.Labels, parsed.dup)
		}
	}
	return req, nil
}

package pipeline

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// logfmtSyntaxError is a malformed logfmt pair; its text becomes
// __error_details__ in Loki's wording.
type logfmtSyntaxError struct {
	msg string
	pos int
}

func (e *logfmtSyntaxError) Error() string {
	return "logfmt syntax error at pos " + strconv.Itoa(e.pos) + " : " + e.msg
}

// logfmtScanner splits a line into key=value pairs the way go-logfmt's
// decoder (as adapted by Loki) does: a bare key has no value, values may be
// double-quoted with JSON-style escapes, and a malformed pair is skipped up
// to the next white space after recording an error.
type logfmtScanner struct {
	line       []byte
	pos        int
	key, value []byte
	// decoded is set when value lives in buf (it had escapes).
	decoded bool
	err     error
	// buf receives unquoted values with escapes.
	buf []byte
}

func (d *logfmtScanner) reset(line []byte) {
	d.line, d.pos, d.err = line, 0, nil
	d.buf = d.buf[:0]
}

func (d *logfmtScanner) eol() bool { return d.pos >= len(d.line) }

func (d *logfmtScanner) fail(msg string) {
	d.err = &logfmtSyntaxError{msg: msg, pos: d.pos + 1}
}

// scan advances to the next pair. It returns false at the end of the line
// or after a malformed pair (then err is set and scanning may go on).
func (d *logfmtScanner) scan() bool {
	d.key, d.value, d.decoded = nil, nil, false
	line := d.line
	for d.pos < len(line) && line[d.pos] <= ' ' {
		d.pos++
	}
	if d.pos >= len(line) {
		return false
	}
	// key
	start, multibyte := d.pos, false
	for ; d.pos < len(line); d.pos++ {
		c := line[d.pos]
		switch {
		case c == '=':
			if d.pos == start {
				d.fail("unexpected '='")
				return d.skipValue()
			}
			d.key = line[start:d.pos]
			if multibyte && bytes.ContainsRune(d.key, utf8.RuneError) {
				d.fail("invalid key")
				return d.skipValue()
			}
			return d.afterEqual()
		case c == '"':
			d.fail(`unexpected '"'`)
			return d.skipValue()
		case c <= ' ':
			return d.bareKey(line[start:d.pos], multibyte)
		case c >= utf8.RuneSelf:
			multibyte = true
		}
	}
	return d.bareKey(line[start:], multibyte)
}

func (d *logfmtScanner) bareKey(key []byte, multibyte bool) bool {
	d.key = key
	if multibyte && bytes.ContainsRune(key, utf8.RuneError) {
		d.fail("invalid key")
		d.key = nil
		return false
	}
	return true
}

func (d *logfmtScanner) afterEqual() bool {
	line := d.line
	d.pos++
	if d.pos >= len(line) || line[d.pos] <= ' ' {
		return true
	}
	if line[d.pos] == '"' {
		return d.quoted()
	}
	start := d.pos
	for ; d.pos < len(line); d.pos++ {
		c := line[d.pos]
		switch {
		case c == '=' || c == '"':
			d.fail("unexpected " + strconv.QuoteRune(rune(c)))
			return d.skipValue()
		case c <= ' ':
			d.value = line[start:d.pos]
			return true
		}
	}
	d.value = line[start:]
	return true
}

func (d *logfmtScanner) skipValue() bool {
	d.key, d.value = nil, nil
	for d.pos < len(d.line) && d.line[d.pos] > ' ' {
		d.pos++
	}
	return false
}

func (d *logfmtScanner) quoted() bool {
	line := d.line
	start := d.pos // the opening quote
	esc, hasEsc := false, false
	for i := start + 1; i < len(line); i++ {
		c := line[i]
		switch {
		case esc:
			esc = false
		case c == '\\':
			esc, hasEsc = true, true
		case c == '"':
			d.pos = i + 1
			if !hasEsc {
				if i > start+1 {
					d.value = line[start+1 : i]
				}
				return true
			}
			from := len(d.buf)
			out, ok := unquoteLogfmt(d.buf, line[start+1:i])
			if !ok {
				d.buf = out[:from]
				d.fail("invalid quoted value")
				return false
			}
			d.buf = out
			if len(out) > from {
				d.value, d.decoded = out[from:], true
			}
			return true
		}
	}
	d.pos = len(line)
	d.fail("unterminated quoted value")
	return false
}

// unquoteLogfmt decodes the JSON-style escapes of a quoted logfmt value;
// invalid UTF-8 becomes U+FFFD.
func unquoteLogfmt(dst, s []byte) ([]byte, bool) {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				return dst, false
			}
			switch s[i+1] {
			case '"', '\\', '/', '\'':
				dst = append(dst, s[i+1])
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
				r, n := decodeU(s[i:])
				if n == 0 {
					return dst, false
				}
				dst = utf8.AppendRune(dst, r)
				i += n
				continue
			default:
				return dst, false
			}
			i += 2
		case c == '"' || c < ' ':
			return dst, false
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			dst = utf8.AppendRune(dst, r)
			i += size
		}
	}
	return dst, true
}

type logfmtKey struct {
	name     string // "" when not extracted
	required bool
}

// logfmtProc is `| logfmt [--strict] [--keep-empty]` without parameters
// (LQ-P3): every pair becomes a label. Without --strict malformed pairs are
// skipped silently; with it parsing stops at the first one and the entry
// gets __error__=LogfmtParserErr. Pairs without a value are dropped unless
// --keep-empty.
type logfmtProc struct {
	strict, keepEmpty bool
	h                 *hints
	dec               logfmtScanner
	keys              map[string]*logfmtKey
}

func (p *logfmtProc) key(raw []byte, l *Labels) *logfmtKey {
	if k, ok := p.keys[bytesString(raw)]; ok {
		return k
	}
	k := &logfmtKey{}
	if name := string(appendSanitized(nil, raw)); name != "" {
		if l.baseHas(name) {
			name += extractedSuffix
		}
		if p.h.shouldExtract(name) {
			k.name = name
			k.required = p.h.isRequired(name)
		}
	}
	if len(p.keys) < maxCachedKeys {
		p.keys[string(raw)] = k
	}
	return k
}

func (p *logfmtProc) process(_ int64, line []byte, l *Labels) ([]byte, bool) {
	if p.h != nil && p.h.none {
		return line, true
	}
	d := &p.dec
	d.reset(line)
	for !d.eol() {
		if !d.scan() {
			if p.strict && d.err != nil {
				break
			}
			continue
		}
		k := p.key(d.key, l)
		if k.name == "" {
			continue
		}
		val := d.value
		if bytes.ContainsRune(val, utf8.RuneError) {
			val = nil
		}
		if !p.keepEmpty && len(val) == 0 {
			continue
		}
		if l.extract(k.name, l.valueString(d, val)) && k.required {
			l.extractedRequired++
			if p.h.allExtracted(l) {
				break
			}
		}
	}
	if p.strict && d.err != nil {
		l.setErr(ErrLogfmt, d.err.Error())
	}
	return line, true
}

// valueString returns a scanned value as a string: values decoded into the
// scanner's buffer are copied into the arena (the buffer is reused on the
// next line), values from the line alias it.
func (l *Labels) valueString(d *logfmtScanner, v []byte) string {
	if d.decoded {
		return l.copyString(v)
	}
	return bytesString(v)
}

// logfmtExprProc is `| logfmt a="key", b` (LQ-P3): only the listed keys are
// extracted, each to its label; the labels exist (empty) even when the line
// lacks the key.
type logfmtExprProc struct {
	strict bool
	ids    []string
	byKey  map[string]string // sanitized source key -> label id
	dec    logfmtScanner
}

func (p *logfmtExprProc) process(_ int64, line []byte, l *Labels) ([]byte, bool) {
	for _, id := range p.ids {
		if !l.baseHas(id) {
			l.set(catParsed, id, "")
		}
	}
	d := &p.dec
	d.reset(line)
	for !d.eol() {
		if !d.scan() {
			if p.strict && d.err != nil {
				break
			}
			continue
		}
		key := string(appendSanitized(nil, d.key))
		id, ok := p.byKey[key]
		if !ok {
			continue
		}
		val := d.value
		if bytes.ContainsRune(val, utf8.RuneError) {
			val = nil
		}
		name := id
		if l.baseHas(name) {
			name += extractedSuffix
		}
		l.set(catParsed, name, l.valueString(d, val))
	}
	if p.strict && d.err != nil {
		l.setErr(ErrLogfmt, d.err.Error())
	}
	return line, true
}

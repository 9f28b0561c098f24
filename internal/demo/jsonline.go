package demo

import (
	"strconv"
)

// object appends one JSON object with keys in call order, the way
// tracing_subscriber's JSON formatter writes them (it keeps field order and
// never sorts). Values are written without reflection.
type object struct {
	b     []byte
	first bool
}

func newObject(dst []byte) object { return object{b: append(dst, '{'), first: true} }

func (o *object) key(k string) {
	if !o.first {
		o.b = append(o.b, ',')
	}
	o.first = false
	o.b = appendString(o.b, k)
	o.b = append(o.b, ':')
}

func (o *object) str(k, v string) { o.key(k); o.b = appendString(o.b, v) }

func (o *object) int(k string, v int64) { o.key(k); o.b = strconv.AppendInt(o.b, v, 10) }

func (o *object) bool(k string, v bool) { o.key(k); o.b = strconv.AppendBool(o.b, v) }

func (o *object) raw(k string, v []byte) { o.key(k); o.b = append(o.b, v...) }

// money writes a decimal amount as a string with two decimals: Rust services
// format rust_decimal values with Display (`amount = %tx.amount`).
func (o *object) money(k string, v float64) {
	o.key(k)
	o.b = append(o.b, '"')
	o.b = strconv.AppendFloat(o.b, v, 'f', 2, 64)
	o.b = append(o.b, '"')
}

// score writes a float field with three decimals (`risk_score = score`).
func (o *object) score(k string, v float64) {
	o.key(k)
	o.b = strconv.AppendFloat(o.b, v, 'f', 3, 64)
}

func (o *object) close() []byte { return append(o.b, '}') }

// appendString appends s as a JSON string. Generated values are ASCII, so
// only quotes, backslashes and control characters need escaping.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

package syntax

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// tokenKind enumerates LogQL's lexical tokens. Keywords are not tokens: they
// are identifiers that the parser interprets by context (LQ-L5), so a label
// may be called "count", "by" or "offset".
type tokenKind uint8

const (
	tokEOF tokenKind = iota
	tokError
	tokIdent
	tokString
	tokNumber
	tokDuration
	tokBytes
	tokFlag // --strict, --keep-empty

	tokLBrace
	tokRBrace
	tokLParen
	tokRParen
	tokLBracket
	tokRBracket
	tokComma
	tokColon
	tokAt

	tokEq    // =
	tokNeq   // !=
	tokRe    // =~
	tokNre   // !~
	tokEqEq  // ==
	tokGt    // >
	tokGte   // >=
	tokLt    // <
	tokLte   // <=
	tokNpa   // !>
	tokPipe  // |
	tokPipeE // |=
	tokPipeR // |~
	tokPipeP // |>

	tokAdd
	tokSub
	tokMul
	tokDiv
	tokMod
	tokPow
)

var tokenNames = [...]string{
	tokEOF:      "$end",
	tokError:    "error",
	tokIdent:    "IDENTIFIER",
	tokString:   "STRING",
	tokNumber:   "NUMBER",
	tokDuration: "DURATION",
	tokBytes:    "BYTES",
	tokFlag:     "FLAG",
	tokLBrace:   "{",
	tokRBrace:   "}",
	tokLParen:   "(",
	tokRParen:   ")",
	tokLBracket: "[",
	tokRBracket: "]",
	tokComma:    ",",
	tokColon:    ":",
	tokAt:       "@",
	tokEq:       "=",
	tokNeq:      "!=",
	tokRe:       "=~",
	tokNre:      "!~",
	tokEqEq:     "==",
	tokGt:       ">",
	tokGte:      ">=",
	tokLt:       "<",
	tokLte:      "<=",
	tokNpa:      "!>",
	tokPipe:     "|",
	tokPipeE:    "|=",
	tokPipeR:    "|~",
	tokPipeP:    "|>",
	tokAdd:      "+",
	tokSub:      "-",
	tokMul:      "*",
	tokDiv:      "/",
	tokMod:      "%",
	tokPow:      "^",
}

func (k tokenKind) String() string {
	if int(k) < len(tokenNames) {
		return tokenNames[k]
	}
	return "token(" + strconv.Itoa(int(k)) + ")"
}

// token is one lexeme. text is the raw source; the decoded value lives in
// str (strings: unquoted; errors: the message), num, dur or bytes.
type token struct {
	kind  tokenKind
	pos   int // byte offset of the first byte
	text  string
	str   string
	raw   bool // a backtick string
	num   float64
	dur   time.Duration
	bytes uint64
}

// describe renders the token for "unexpected X" in syntax errors.
func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "$end"
	case tokString:
		return "STRING " + truncate(t.text)
	case tokIdent, tokNumber, tokDuration, tokBytes, tokFlag:
		return t.kind.String() + " " + strconv.Quote(truncate(t.text))
	default:
		return t.kind.String()
	}
}

func truncate(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max]) + "…"
}

// lex splits the whole input into tokens. The last token is tokEOF or, when
// the input holds something that is not a token, tokError carrying the
// message; the parser reports it only when it reaches that position, so an
// earlier syntax error is still reported first.
func lex(input string) []token {
	toks := make([]token, 0, len(input)/4+2)
	l := lexer{src: input}
	for {
		t := l.next()
		toks = append(toks, t)
		if t.kind == tokEOF || t.kind == tokError {
			return toks
		}
	}
}

type lexer struct {
	src string
	pos int
}

func (l *lexer) errorf(pos int, msg string) token {
	return token{kind: tokError, pos: pos, str: msg}
}

func (l *lexer) skipSpaceAndComments() {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			l.pos++
		case c == '#': // LQ-L6: comment to end of line
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.pos++
			}
		default:
			return
		}
	}
}

func (l *lexer) next() token {
	l.skipSpaceAndComments()
	start := l.pos
	if l.pos >= len(l.src) {
		return token{kind: tokEOF, pos: start}
	}
	c := l.src[l.pos]
	peek := byte(0)
	if l.pos+1 < len(l.src) {
		peek = l.src[l.pos+1]
	}
	op := func(k tokenKind, n int) token {
		l.pos += n
		return token{kind: k, pos: start, text: l.src[start:l.pos]}
	}
	switch {
	case isIdentStart(c):
		for l.pos < len(l.src) && isIdentChar(l.src[l.pos]) {
			l.pos++
		}
		return token{kind: tokIdent, pos: start, text: l.src[start:l.pos]}
	case isDigit(c) || (c == '.' && isDigit(peek)):
		return l.number()
	case c == '"' || c == '`':
		return l.string()
	}
	switch c {
	case '{':
		return op(tokLBrace, 1)
	case '}':
		return op(tokRBrace, 1)
	case '(':
		return op(tokLParen, 1)
	case ')':
		return op(tokRParen, 1)
	case '[':
		return op(tokLBracket, 1)
	case ']':
		return op(tokRBracket, 1)
	case ',':
		return op(tokComma, 1)
	case ':':
		return op(tokColon, 1)
	case '@':
		return op(tokAt, 1)
	case '=':
		switch peek {
		case '~':
			return op(tokRe, 2)
		case '=':
			return op(tokEqEq, 2)
		}
		return op(tokEq, 1)
	case '!':
		switch peek {
		case '=':
			return op(tokNeq, 2)
		case '~':
			return op(tokNre, 2)
		case '>':
			return op(tokNpa, 2)
		}
	case '|':
		switch peek {
		case '=':
			return op(tokPipeE, 2)
		case '~':
			return op(tokPipeR, 2)
		case '>':
			return op(tokPipeP, 2)
		}
		return op(tokPipe, 1)
	case '>':
		if peek == '=' {
			return op(tokGte, 2)
		}
		return op(tokGt, 1)
	case '<':
		if peek == '=' {
			return op(tokLte, 2)
		}
		return op(tokLt, 1)
	case '+':
		return op(tokAdd, 1)
	case '-':
		// LQ-L7: parser flags are "--" followed by a name.
		if peek == '-' && l.pos+2 < len(l.src) && isIdentStart(l.src[l.pos+2]) {
			l.pos += 2
			for l.pos < len(l.src) && (isIdentChar(l.src[l.pos]) || l.src[l.pos] == '-') {
				l.pos++
			}
			return token{kind: tokFlag, pos: start, text: l.src[start:l.pos]}
		}
		return op(tokSub, 1)
	case '*':
		return op(tokMul, 1)
	case '/':
		return op(tokDiv, 1)
	case '%':
		return op(tokMod, 1)
	case '^':
		return op(tokPow, 1)
	}
	r, _ := utf8.DecodeRuneInString(l.src[l.pos:])
	return l.errorf(start, "syntax error: unexpected character "+strconv.QuoteRune(r))
}

// number scans a NUMBER, DURATION or BYTES literal (LQ-L2, LQ-L3, LQ-L4).
// A numeric prefix followed directly by unit characters is one token whose
// kind follows from which parse accepts it: a duration (Prometheus style
// first, then Go style) before a byte size, so "5m" is five minutes and "5MB"
// five megabytes.
func (l *lexer) number() token {
	start := l.pos
	s := l.src
	i := l.pos
	hex := false
	if s[i] == '0' && i+1 < len(s) && (s[i+1] == 'x' || s[i+1] == 'X') && i+2 < len(s) && isHexDigit(s[i+2]) {
		hex = true
		i += 2
		for i < len(s) && isHexDigit(s[i]) {
			i++
		}
	} else {
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i < len(s) && s[i] == '.' {
			i++
			for i < len(s) && isDigit(s[i]) {
				i++
			}
		}
		if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
			j := i + 1
			if j < len(s) && (s[j] == '+' || s[j] == '-') {
				j++
			}
			if j < len(s) && isDigit(s[j]) {
				for j < len(s) && isDigit(s[j]) {
					j++
				}
				i = j
			}
		}
	}
	end := i
	for end < len(s) {
		if isIdentChar(s[end]) || s[end] == '.' {
			end++
			continue
		}
		if strings.HasPrefix(s[end:], "µ") || strings.HasPrefix(s[end:], "μ") {
			end += 2
			continue
		}
		break
	}
	l.pos = end
	text := s[start:end]
	if end == i {
		if hex {
			v, err := strconv.ParseUint(text[2:], 16, 64)
			if err != nil {
				return l.errorf(start, "syntax error: number out of range: "+text)
			}
			return token{kind: tokNumber, pos: start, text: text, num: float64(v)}
		}
		v, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return l.errorf(start, "syntax error: number out of range: "+text)
		}
		return token{kind: tokNumber, pos: start, text: text, num: v}
	}
	if d, err := parseDuration(text); err == nil {
		return token{kind: tokDuration, pos: start, text: text, dur: d}
	}
	if b, err := parseBytes(text); err == nil {
		return token{kind: tokBytes, pos: start, text: text, bytes: b}
	}
	return l.errorf(start, "syntax error: invalid number, duration or byte size "+strconv.Quote(truncate(text)))
}

// string scans a double-quoted string with Go escapes or a backtick raw
// string (LQ-L1).
func (l *lexer) string() token {
	start := l.pos
	q := l.src[l.pos]
	i := l.pos + 1
	for i < len(l.src) {
		c := l.src[i]
		if c == q {
			text := l.src[start : i+1]
			l.pos = i + 1
			v, err := strconv.Unquote(text)
			if err != nil {
				return l.errorf(start, "syntax error: invalid string "+truncate(text)+": "+strings.TrimPrefix(err.Error(), "strconv.Unquote: "))
			}
			return token{kind: tokString, pos: start, text: text, str: v, raw: q == '`'}
		}
		if q == '"' {
			if c == '\\' {
				i += 2
				continue
			}
			if c == '\n' {
				break
			}
		}
		i++
	}
	l.pos = len(l.src)
	return l.errorf(start, "syntax error: literal not terminated")
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isHexDigit(c byte) bool   { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') }
func isIdentStart(c byte) bool { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isIdentChar(c byte) bool  { return isIdentStart(c) || isDigit(c) }

// IsValidLabelName reports whether s can be written as a LogQL label
// identifier ([a-zA-Z_][a-zA-Z0-9_]*).
func IsValidLabelName(s string) bool {
	if s == "" || !isIdentStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isIdentChar(s[i]) {
			return false
		}
	}
	return true
}

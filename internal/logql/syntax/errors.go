package syntax

import (
	"fmt"
	"unicode/utf8"
)

// ParseError is the error of every parse function in this package. Line and
// Col are 1-based (Col counts characters, not bytes) and Offset is the byte
// offset of the offending token in the input.
//
// Error() renders Loki's text so clients that grep for it keep working:
// "parse error at line 1, col 13: syntax error: unexpected $end, expecting } or ,".
// Errors that Loki reports without a position (semantic validation such as
// "grouping not allowed for sum_over_time aggregation" or the
// empty-compatible selector rule) render as "parse error : <msg>"; their
// Line, Col and Offset still point at the construct for editors.
type ParseError struct {
	Msg    string
	Line   int
	Col    int
	Offset int

	// Found and Expected are set for syntax errors: the offending token
	// ("$end", "}", `IDENTIFIER "foo"`) and what the grammar allowed there.
	Found    string
	Expected []string

	// positionless selects Loki's "parse error : msg" rendering.
	positionless bool
}

func (e *ParseError) Error() string {
	if e.positionless || e.Line == 0 {
		return "parse error : " + e.Msg
	}
	return fmt.Sprintf("parse error at line %d, col %d: %s", e.Line, e.Col, e.Msg)
}

// newParseError builds a positioned error for the byte offset off of input.
func newParseError(input string, off int, msg string) *ParseError {
	if off > len(input) {
		off = len(input)
	}
	line, col := 1, 1
	for i := 0; i < off; {
		r, n := utf8.DecodeRuneInString(input[i:])
		if i+n > off {
			break
		}
		i += n
		if r == '\n' {
			line++
			col = 1
			continue
		}
		col++
	}
	return &ParseError{Msg: msg, Line: line, Col: col, Offset: off}
}

// newValidationError builds an error that renders without a position, as
// Loki's semantic checks do, while still recording where the construct is.
func newValidationError(input string, off int, msg string) *ParseError {
	e := newParseError(input, off, msg)
	e.positionless = true
	return e
}

package syntax

import "errors"

// PatternPart is one piece of a pattern expression (`<ip> - <_> "<method>"`):
// a literal to match verbatim or a capture, named or "_" (LQ-P5, LQ-F4).
type PatternPart struct {
	Capture bool
	// Text is the literal, or the capture name ("_" for an unnamed capture).
	Text string
}

var (
	errNoCapture          = errors.New("at least one capture is required")
	errConsecutiveCapture = errors.New("found consecutive capture: captures must be separated by a literal")
	errEmptyPattern       = errors.New("empty pattern")
)

// ParsePattern splits a pattern expression into literals and captures. A
// capture is `<name>` with name an identifier or "_"; any other "<" is a
// literal character. Two captures with no literal between them are an
// error. The `| pattern` parser additionally needs a named capture;
// `|>` line filters do not.
func ParsePattern(s string) ([]PatternPart, error) {
	if s == "" {
		return nil, errEmptyPattern
	}
	var parts []PatternPart
	lit := 0 // start of the pending literal
	addLiteral := func(end int) {
		if end > lit {
			parts = append(parts, PatternPart{Text: s[lit:end]})
		}
	}
	for i := 0; i < len(s); {
		if s[i] == '<' {
			if n := captureLen(s[i:]); n > 0 {
				addLiteral(i)
				if len(parts) > 0 && parts[len(parts)-1].Capture {
					return nil, errConsecutiveCapture
				}
				parts = append(parts, PatternPart{Capture: true, Text: s[i+1 : i+n-1]})
				i += n
				lit = i
				continue
			}
		}
		i++
	}
	addLiteral(len(s))
	return parts, nil
}

// captureLen returns the length of the capture `<name>` at the start of s,
// or 0.
func captureLen(s string) int {
	if len(s) < 3 || !isIdentStart(s[1]) {
		return 0
	}
	i := 2
	for i < len(s) && isIdentChar(s[i]) {
		i++
	}
	if i < len(s) && s[i] == '>' {
		return i + 1
	}
	return 0
}

func hasNamedCapture(parts []PatternPart) bool {
	for _, p := range parts {
		if p.Capture && p.Text != "_" {
			return true
		}
	}
	return false
}

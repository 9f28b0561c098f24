package agent

import (
	"fmt"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/encoding/unicode"
)

// lookupEncoding resolves a scrape config's encoding (an IANA charset name)
// to a decoder. Encodings whose newline is not the byte 0x0A (UTF-16,
// UTF-32) are not supported because lines are split on raw bytes.
func lookupEncoding(name string) (encoding.Encoding, error) {
	if strings.EqualFold(name, "utf-8") || strings.EqualFold(name, "utf8") {
		return nil, nil
	}
	e, err := ianaindex.IANA.Encoding(name)
	if err != nil || e == nil {
		return nil, fmt.Errorf("encoding %q: %w", name, ErrNotSupported)
	}
	if e == unicode.UTF8 {
		return nil, nil
	}
	if strings.HasPrefix(strings.ToUpper(name), "UTF-16") || strings.HasPrefix(strings.ToUpper(name), "UTF-32") {
		return nil, fmt.Errorf("encoding %q: %w", name, ErrNotSupported)
	}
	return e, nil
}

package loki

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/tenant"
)

// Status 499 is what Loki answers when the client went away.
const statusClientClosed = 499

// msgTimeout is Loki's fixed text for a query that hit its deadline.
const msgTimeout = "request timed out, decrease the duration of the request or add more label matchers (prefer exact match over regex match) to reduce the amount of data processed"

// writeError sends a plain-text error as Loki does.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg))
}

// errorStatus maps an error to Loki's status code and message.
func errorStatus(err error) (int, string) {
	var se interface{ StatusCode() int }
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, msgTimeout
	case errors.Is(err, context.Canceled):
		return statusClientClosed, "the request was cancelled by the client"
	case errors.Is(err, tenant.ErrNoOrgID):
		return http.StatusUnauthorized, "no org id"
	case errors.As(err, &se):
		return se.StatusCode(), err.Error()
	}
	return http.StatusInternalServerError, err.Error()
}

// badRequestError marks an error as the client's (400).
type badRequestError struct{ error }

func (badRequestError) StatusCode() int { return http.StatusBadRequest }

func badRequest(err error) error { return badRequestError{err} }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

func writeRaw(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(b)
}

// appendJSONString appends s as a JSON string (valid UTF-8 guaranteed:
// invalid bytes become U+FFFD, as encoding/json does).
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendLabelsJSON(dst []byte, ls model.Labels) []byte {
	dst = append(dst, '{')
	first := true
	ls.Range(func(l model.Label) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJSONString(dst, l.Name)
		dst = append(dst, ':')
		dst = appendJSONString(dst, l.Value)
	})
	return append(dst, '}')
}

// appendFloatString renders a sample value as Loki does: Go's shortest
// representation, "NaN", "+Inf", "-Inf".
func appendFloatString(dst []byte, v float64) []byte {
	dst = append(dst, '"')
	switch {
	case math.IsNaN(v):
		dst = append(dst, "NaN"...)
	case math.IsInf(v, 1):
		dst = append(dst, "+Inf"...)
	case math.IsInf(v, -1):
		dst = append(dst, "-Inf"...)
	default:
		dst = strconv.AppendFloat(dst, v, 'f', -1, 64)
	}
	return append(dst, '"')
}

// appendUnixSeconds renders milliseconds as seconds with up to 3 decimals.
func appendUnixSeconds(dst []byte, ms int64) []byte {
	return strconv.AppendFloat(dst, float64(ms)/1000, 'f', -1, 64)
}

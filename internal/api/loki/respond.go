package loki

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/ledgerlog/ledgerlog/internal/jsonenc"
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

// appendJSONString appends s as encoding/json writes a string.
func appendJSONString(dst []byte, s string) []byte { return jsonenc.AppendString(dst, s) }

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

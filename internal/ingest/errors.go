package ingest

import (
	"fmt"
	"net/http"
	"strings"
)

// HTTPError is a rejected push: the HTTP status and the plain-text message
// Loki sends for it. Every error returned by this package's Parse*, Decode*
// and Validate functions is an *HTTPError.
type HTTPError struct {
	Status int
	Msg    string
}

// Error returns the message.
func (e *HTTPError) Error() string { return e.Msg }

func httpErrorf(status int, format string, args ...any) *HTTPError {
	return &HTTPError{Status: status, Msg: fmt.Sprintf(format, args...)}
}

func badRequest(err error) *HTTPError {
	if he, ok := err.(*HTTPError); ok {
		return he
	}
	return &HTTPError{Status: http.StatusBadRequest, Msg: err.Error()}
}

// Discard reasons, as Loki names them in loki_discarded_samples_total.
const (
	ReasonInvalidLabels                = "invalid_labels"
	ReasonMissingLabels                = "missing_labels"
	ReasonRateLimited                  = "rate_limited"
	ReasonLineTooLong                  = "line_too_long"
	ReasonStreamRateLimit              = "per_stream_rate_limit"
	ReasonGreaterThanMaxSampleAge      = "greater_than_max_sample_age"
	ReasonTooFarInFuture               = "too_far_in_future"
	ReasonMaxLabelNamesPerSeries       = "max_label_names_per_series"
	ReasonLabelNameTooLong             = "label_name_too_long"
	ReasonLabelValueTooLong            = "label_value_too_long"
	ReasonDuplicateLabelNames          = "duplicate_label_names"
	ReasonDisallowedStructuredMetadata = "disallowed_structured_metadata"
	ReasonStructuredMetadataTooLarge   = "structured_metadata_too_large"
	ReasonStructuredMetadataTooMany    = "structured_metadata_too_many"
	ReasonRequestBodyTooLarge          = "request_body_too_large"
)

// Messages, worded as Loki words them: clients log them and users grep for
// them. Where Loki's source and a running Loki disagree on the case of the
// first letter, the running Loki wins.
const (
	msgMissingStreams       = "error at least one valid stream is required for ingestion"
	msgMissingLabels        = "error at least one label pair is required per stream"
	msgCouldNotParseLabels  = "couldn't parse labels: %s"
	msgRequestBodyTooLarge  = "request body too large: %d bytes, limit: %d bytes"
	msgEncodingUnsupported  = "Content-Encoding %q not supported"
	msgRateLimited          = "ingestion rate limit exceeded for user %s (limit: %d bytes/sec) while attempting to ingest '%d' lines totaling '%d' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased"
	msgLineTooLong          = "max entry size '%d' bytes exceeded for stream '%s' while adding an entry with length '%d' bytes"
	msgTooOld               = "entry for stream '%s' has timestamp too old: %s, oldest acceptable timestamp is: %s"
	msgTooNew               = "entry for stream '%s' has timestamp too new: %s"
	msgMaxLabelNames        = "entry for stream '%s' has %d label names; limit %d"
	msgLabelNameTooLong     = "stream '%s' has label name too long: '%s'"
	msgLabelValueTooLong    = "stream '%s' has label value too long: '%s'"
	msgDuplicateLabelNames  = "stream '%s' has duplicate label name: '%s'"
	msgDisallowedMetadata   = "stream '%s' includes structured metadata, but this feature is disallowed. Please see `limits_config.allow_structured_metadata` or contact your Loki administrator to enable it."
	msgMetadataTooLarge     = "stream '%s' has structured metadata too large: '%d' bytes, limit: '%d' bytes. Please see `limits_config.max_structured_metadata_size` or contact your Loki administrator to increase it."
	msgMetadataTooMany      = "stream '%s' has too many structured metadata labels: '%d', limit: '%d'. Please see `limits_config.max_structured_metadata_entries_count` or contact your Loki administrator to increase it."
	msgStreamRateLimit      = "Per stream rate limit exceeded (limit: %s/sec) while attempting to ingest for stream '%s' totaling %s, consider splitting a stream via additional labels or contact your Loki administrator to see if the limit can be increased"
	msgEntryIgnored         = "entry with timestamp %s ignored, reason: '%s',\n"
	msgTotalIgnored         = "user '%s', total ignored: %d out of %d for stream: %s"
	msgOTLPContentType      = "content type: %s is not supported"
	maxReturnedEntryErrors  = 10
	timeFormatEntryMessages = "2006-01-02T15:04:05Z07:00" // time.RFC3339
)

// groupedErrors collects rejection messages and renders them as Loki's
// GroupedErrors does ("N errors like: msg; …"), in first-seen order so the
// text is deterministic.
type groupedErrors struct {
	order  []string
	counts map[string]int
}

func (g *groupedErrors) add(msg string) {
	if g.counts == nil {
		g.counts = make(map[string]int, 4)
	}
	if g.counts[msg] == 0 {
		g.order = append(g.order, msg)
	}
	g.counts[msg]++
}

func (g *groupedErrors) empty() bool { return len(g.order) == 0 }

func (g *groupedErrors) String() string {
	var b strings.Builder
	for i, msg := range g.order {
		if i > 0 {
			b.WriteString("; ")
		}
		n := g.counts[msg]
		if len(g.order) > 1 || n > 1 {
			fmt.Fprintf(&b, "%d errors like: ", n)
		}
		b.WriteString(msg)
	}
	return b.String()
}

// formatByteSize renders a byte count as Loki's flagext.ByteSize does in
// messages: the largest binary unit that divides it exactly ("3MB", "380B").
func formatByteSize(n int64) string {
	const (
		kb = 1 << 10
		mb = 1 << 20
		gb = 1 << 30
		tb = 1 << 40
		pb = 1 << 50
		eb = 1 << 60
	)
	switch {
	case n == 0:
		return "0B"
	case n%eb == 0:
		return fmt.Sprintf("%dEB", n/eb)
	case n%pb == 0:
		return fmt.Sprintf("%dPB", n/pb)
	case n%tb == 0:
		return fmt.Sprintf("%dTB", n/tb)
	case n%gb == 0:
		return fmt.Sprintf("%dGB", n/gb)
	case n%mb == 0:
		return fmt.Sprintf("%dMB", n/mb)
	case n%kb == 0:
		return fmt.Sprintf("%dKB", n/kb)
	}
	return fmt.Sprintf("%dB", n)
}

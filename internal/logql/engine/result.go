// Package engine owns LogQL evaluation: it plans a parsed query onto the
// storage read path (stream matchers, pushed-down line filters, time range,
// limit) and produces Loki's result types.
package engine

import (
	"errors"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// Params describe one query.
type Params struct {
	Tenants   []string
	Query     string
	Start     int64 // Unix ns, inclusive
	End       int64 // Unix ns; exclusive for log queries, inclusive for metric steps
	Step      time.Duration
	Interval  time.Duration // log queries: at most one entry per interval
	Limit     int
	Direction model.Direction
	Instant   bool
}

// ResultType is Loki's resultType.
type ResultType string

// Result types.
const (
	TypeStreams ResultType = "streams"
	TypeMatrix  ResultType = "matrix"
	TypeVector  ResultType = "vector"
	TypeScalar  ResultType = "scalar"
)

// Entry is one log line of a result with its per-entry labels.
type Entry struct {
	Timestamp int64
	Line      string
	Metadata  model.Labels // structured metadata
	Parsed    model.Labels // labels extracted by parsers
}

// Stream is a log result stream.
type Stream struct {
	Labels  model.Labels
	Entries []Entry
}

// Point is one sample of a series; T is Unix milliseconds.
type Point struct {
	T int64
	V float64
}

// Series is a matrix result series.
type Series struct {
	Metric model.Labels
	Points []Point
}

// Sample is one vector element (or the scalar).
type Sample struct {
	Metric model.Labels
	T      int64 // Unix ms
	V      float64
}

// Result is the answer to a query.
type Result struct {
	Type     ResultType
	Streams  []Stream
	Matrix   []Series
	Vector   []Sample
	Scalar   Sample
	Stats    Stats
	Warnings []string
}

// Stats is the work a query did, reported in Loki's `stats` object.
type Stats struct {
	ExecTime            time.Duration
	TotalBytesProcessed int64
	TotalLinesProcessed int64
	PostFilterLines     int64
	EntriesReturned     int64
	ChunksRef           int64
	ChunksDownloaded    int64
	CompressedBytes     int64
	DecompressedBytes   int64
	DecompressedLines   int64
	HeadChunkBytes      int64
	HeadChunkLines      int64
	Splits              int64
}

// UserError is a problem with the query itself (400).
type UserError struct{ Msg string }

func (e *UserError) Error() string { return e.Msg }

// Userf returns a UserError.
func Userf(msg string) error { return &UserError{Msg: msg} }

// IsUserError reports whether err is the client's fault.
func IsUserError(err error) bool {
	var ue *UserError
	return errors.As(err, &ue)
}

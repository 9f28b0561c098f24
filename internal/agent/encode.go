package agent

import (
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of Loki's push protobuf (logproto.PushRequest).
const (
	fieldPushStreams     = 1 // PushRequest.streams
	fieldStreamLabels    = 1 // StreamAdapter.labels
	fieldStreamEntries   = 2 // StreamAdapter.entries
	fieldEntryTimestamp  = 1 // EntryAdapter.timestamp
	fieldEntryLine       = 2 // EntryAdapter.line
	fieldEntryMetadata   = 3 // EntryAdapter.structuredMetadata
	fieldTimestampSecond = 1 // google.protobuf.Timestamp.seconds
	fieldTimestampNanos  = 2 // google.protobuf.Timestamp.nanos
	fieldPairName        = 1 // LabelPairAdapter.name
	fieldPairValue       = 2 // LabelPairAdapter.value
)

// pushEntry is one entry of a push stream.
type pushEntry struct {
	Timestamp time.Time
	Line      string
	Metadata  []metaPair
}

type metaPair struct{ Name, Value string }

// pushStream is one stream of a push request.
type pushStream struct {
	Labels  string // Prometheus text form: {a="b", c="d"}
	Entries []pushEntry
}

func timestampSize(t time.Time) int {
	n := 0
	if s := t.Unix(); s != 0 {
		n += protowire.SizeTag(fieldTimestampSecond) + protowire.SizeVarint(uint64(s))
	}
	if ns := t.Nanosecond(); ns != 0 {
		n += protowire.SizeTag(fieldTimestampNanos) + protowire.SizeVarint(uint64(ns))
	}
	return n
}

func pairSize(p metaPair) int {
	return protowire.SizeTag(fieldPairName) + protowire.SizeBytes(len(p.Name)) +
		protowire.SizeTag(fieldPairValue) + protowire.SizeBytes(len(p.Value))
}

func entrySize(e *pushEntry) int {
	n := protowire.SizeTag(fieldEntryTimestamp) + protowire.SizeBytes(timestampSize(e.Timestamp))
	n += protowire.SizeTag(fieldEntryLine) + protowire.SizeBytes(len(e.Line))
	for _, p := range e.Metadata {
		n += protowire.SizeTag(fieldEntryMetadata) + protowire.SizeBytes(pairSize(p))
	}
	return n
}

func streamSize(s *pushStream) int {
	n := protowire.SizeTag(fieldStreamLabels) + protowire.SizeBytes(len(s.Labels))
	for i := range s.Entries {
		n += protowire.SizeTag(fieldStreamEntries) + protowire.SizeBytes(entrySize(&s.Entries[i]))
	}
	return n
}

// AppendPushRequest appends the protobuf encoding of a Loki PushRequest
// holding streams to dst (uncompressed; the wire body is its snappy block).
func appendPushRequest(dst []byte, streams []*pushStream) []byte {
	for _, s := range streams {
		dst = protowire.AppendTag(dst, fieldPushStreams, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(streamSize(s)))
		dst = protowire.AppendTag(dst, fieldStreamLabels, protowire.BytesType)
		dst = protowire.AppendString(dst, s.Labels)
		for i := range s.Entries {
			e := &s.Entries[i]
			dst = protowire.AppendTag(dst, fieldStreamEntries, protowire.BytesType)
			dst = protowire.AppendVarint(dst, uint64(entrySize(e)))
			dst = protowire.AppendTag(dst, fieldEntryTimestamp, protowire.BytesType)
			dst = protowire.AppendVarint(dst, uint64(timestampSize(e.Timestamp)))
			if sec := e.Timestamp.Unix(); sec != 0 {
				dst = protowire.AppendTag(dst, fieldTimestampSecond, protowire.VarintType)
				dst = protowire.AppendVarint(dst, uint64(sec))
			}
			if ns := e.Timestamp.Nanosecond(); ns != 0 {
				dst = protowire.AppendTag(dst, fieldTimestampNanos, protowire.VarintType)
				dst = protowire.AppendVarint(dst, uint64(ns))
			}
			dst = protowire.AppendTag(dst, fieldEntryLine, protowire.BytesType)
			dst = protowire.AppendString(dst, e.Line)
			for _, p := range e.Metadata {
				dst = protowire.AppendTag(dst, fieldEntryMetadata, protowire.BytesType)
				dst = protowire.AppendVarint(dst, uint64(pairSize(p)))
				dst = protowire.AppendTag(dst, fieldPairName, protowire.BytesType)
				dst = protowire.AppendString(dst, p.Name)
				dst = protowire.AppendTag(dst, fieldPairValue, protowire.BytesType)
				dst = protowire.AppendString(dst, p.Value)
			}
		}
	}
	return dst
}

// timeFromNanos is the inverse of unixNanos; 0 is the zero time.
func timeFromNanos(n int64) time.Time {
	if n <= 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// unixNanos returns t in Unix nanoseconds, 0 for the zero time.
func unixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

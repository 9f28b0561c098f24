package ingest

import (
	"errors"
	"fmt"
	"io"
	"math"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// The push protobuf (Loki's logproto, field numbers are the contract):
//
//	PushRequest      { repeated StreamAdapter streams = 1; }
//	StreamAdapter    { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }
//	EntryAdapter     { google.protobuf.Timestamp timestamp = 1; string line = 2;
//	                   repeated LabelPairAdapter structuredMetadata = 3;
//	                   repeated LabelPairAdapter parsed = 4; }
//	Timestamp        { int64 seconds = 1; int32 nanos = 2; }
//	LabelPairAdapter { string name = 1; string value = 2; }
//
// Unknown fields are skipped; `hash` and `parsed` are ignored on decode and
// never written.
const (
	fieldPushStreams = 1

	fieldStreamLabels  = 1
	fieldStreamEntries = 2
	fieldStreamHash    = 3

	fieldEntryTimestamp = 1
	fieldEntryLine      = 2
	fieldEntryMetadata  = 3
	fieldEntryParsed    = 4

	fieldTimestampSeconds = 1
	fieldTimestampNanos   = 2

	fieldPairName  = 1
	fieldPairValue = 2
)

const nsPerSec = int64(1e9)

// errProtoTruncated is what gogo-generated decoders (Loki's) return for a
// length that runs past the end.
var errProtoTruncated = io.ErrUnexpectedEOF

// DecodeProto decodes a snappy-block-compressed logproto.PushRequest, the body
// Promtail, Alloy and most clients send. The decoded length recorded in the
// snappy header is checked against maxDecoded (if > 0) before anything is
// allocated: a larger body is a 413. Corrupt input is a 400 whose message is
// the snappy or protobuf error.
//
// body is not retained. Strings of the result alias one buffer holding the
// decompressed body.
func DecodeProto(body []byte, maxDecoded int64) (*Request, error) {
	buf, err := unsnappy(body, maxDecoded)
	if err != nil {
		return nil, err
	}
	req, err := DecodeProtoRaw(buf)
	if err != nil {
		return nil, err
	}
	req.BodySize = int64(len(body))
	return req, nil
}

// DecodeProtoRaw decodes an uncompressed logproto.PushRequest. The result
// aliases buf, which the caller must not modify afterwards.
func DecodeProtoRaw(buf []byte) (*Request, error) {
	d := protoDecoder{buf: buf}
	if len(buf) > 0 {
		d.s = unsafe.String(&buf[0], len(buf))
	}
	req := &Request{Format: "protobuf"}
	if err := d.pushRequest(req); err != nil {
		return nil, badRequest(err)
	}
	return req, nil
}

// protoDecoder walks a PushRequest. buf and s are the same bytes; strings are
// cut from s so that they cost no allocation.
type protoDecoder struct {
	buf []byte
	s   string
	md  metadataBuilder
}

func wireTypeError(typ protowire.Type, field string) error {
	return fmt.Errorf("proto: wrong wireType = %d for field %s", typ, field)
}

// skip consumes the value of an unknown field at buf[pos:].
func (d *protoDecoder) skip(num protowire.Number, typ protowire.Type, pos, end int) (int, error) {
	n := protowire.ConsumeFieldValue(num, typ, d.buf[pos:end])
	if n < 0 {
		return 0, protowire.ParseError(n)
	}
	return pos + n, nil
}

// lenDelimited consumes a length prefix at buf[pos:end] and returns the
// bounds of the value.
func (d *protoDecoder) lenDelimited(pos, end int) (start, stop int, err error) {
	v, n := protowire.ConsumeVarint(d.buf[pos:end])
	if n < 0 {
		return 0, 0, protowire.ParseError(n)
	}
	start = pos + n
	if v > uint64(end-start) {
		return 0, 0, errProtoTruncated
	}
	return start, start + int(v), nil
}

func (d *protoDecoder) tag(pos, end int) (protowire.Number, protowire.Type, int, error) {
	// Fast path: one-byte tags cover every field of the schema.
	if pos < end && d.buf[pos] < 0x80 {
		b := d.buf[pos]
		if b>>3 == 0 {
			return 0, 0, 0, errors.New("proto: illegal tag 0")
		}
		return protowire.Number(b >> 3), protowire.Type(b & 7), pos + 1, nil
	}
	num, typ, n := protowire.ConsumeTag(d.buf[pos:end])
	if n < 0 {
		return 0, 0, 0, protowire.ParseError(n)
	}
	return num, typ, pos + n, nil
}

func (d *protoDecoder) pushRequest(req *Request) error {
	pos, end := 0, len(d.buf)
	// Count streams first so the slice is allocated once.
	count := 0
	for p := pos; p < end; {
		num, typ, next, err := d.tag(p, end)
		if err != nil {
			return err
		}
		if num == fieldPushStreams && typ == protowire.BytesType {
			count++
		}
		if p, err = d.skip(num, typ, next, end); err != nil {
			return err
		}
	}
	req.Streams = make([]model.Stream, 0, count)
	for pos < end {
		num, typ, next, err := d.tag(pos, end)
		if err != nil {
			return err
		}
		pos = next
		if num != fieldPushStreams {
			if pos, err = d.skip(num, typ, pos, end); err != nil {
				return err
			}
			continue
		}
		if typ != protowire.BytesType {
			return wireTypeError(typ, "Streams")
		}
		start, stop, err := d.lenDelimited(pos, end)
		if err != nil {
			return err
		}
		if err := d.stream(req, start, stop); err != nil {
			return err
		}
		pos = stop
	}
	return nil
}

func (d *protoDecoder) stream(req *Request, pos, end int) error {
	var (
		rawLabels string
		entries   = 0
	)
	// First pass: the label string and the number of entries.
	for p := pos; p < end; {
		num, typ, next, err := d.tag(p, end)
		if err != nil {
			return err
		}
		switch {
		case num == fieldStreamLabels && typ == protowire.BytesType:
			start, stop, err := d.lenDelimited(next, end)
			if err != nil {
				return err
			}
			rawLabels = d.s[start:stop]
			p = stop
			continue
		case num == fieldStreamLabels:
			return wireTypeError(typ, "Labels")
		case num == fieldStreamEntries && typ == protowire.BytesType:
			entries++
		case num == fieldStreamEntries:
			return wireTypeError(typ, "Entries")
		case num == fieldStreamHash && typ != protowire.VarintType:
			return wireTypeError(typ, "Hash")
		}
		if p, err = d.skip(num, typ, next, end); err != nil {
			return err
		}
	}
	parsed, err := streamLabels.parse(rawLabels)
	if err != nil {
		return err
	}
	st := model.Stream{Labels: parsed.ls, Entries: make([]model.Entry, 0, entries)}
	for pos < end {
		num, typ, next, err := d.tag(pos, end)
		if err != nil {
			return err
		}
		pos = next
		if num != fieldStreamEntries {
			if pos, err = d.skip(num, typ, pos, end); err != nil {
				return err
			}
			continue
		}
		start, stop, err := d.lenDelimited(pos, end)
		if err != nil {
			return err
		}
		e, err := d.entry(start, stop)
		if err != nil {
			return err
		}
		st.Entries = append(st.Entries, e)
		pos = stop
	}
	req.Streams = append(req.Streams, st)
	if parsed.dup != "" {
		req.markDuplicate(len(req.Streams)-1, rawLabels, parsed.dup)
	}
	return nil
}

func (d *protoDecoder) entry(pos, end int) (model.Entry, error) {
	var e model.Entry
	d.md.reset()
	for pos < end {
		num, typ, next, err := d.tag(pos, end)
		if err != nil {
			return e, err
		}
		pos = next
		switch num {
		case fieldEntryTimestamp:
			if typ != protowire.BytesType {
				return e, wireTypeError(typ, "Timestamp")
			}
			start, stop, err := d.lenDelimited(pos, end)
			if err != nil {
				return e, err
			}
			if e.Timestamp, err = d.timestamp(start, stop); err != nil {
				return e, err
			}
			pos = stop
		case fieldEntryLine:
			if typ != protowire.BytesType {
				return e, wireTypeError(typ, "Line")
			}
			start, stop, err := d.lenDelimited(pos, end)
			if err != nil {
				return e, err
			}
			e.Line = d.s[start:stop]
			pos = stop
		case fieldEntryMetadata:
			if typ != protowire.BytesType {
				return e, wireTypeError(typ, "StructuredMetadata")
			}
			start, stop, err := d.lenDelimited(pos, end)
			if err != nil {
				return e, err
			}
			name, value, err := d.pair(start, stop)
			if err != nil {
				return e, err
			}
			d.md.add(name, value)
			pos = stop
		default:
			if num == fieldEntryParsed && typ != protowire.BytesType {
				return e, wireTypeError(typ, "Parsed")
			}
			if pos, err = d.skip(num, typ, pos, end); err != nil {
				return e, err
			}
		}
	}
	e.Metadata = d.md.labels()
	return e, nil
}

// timestamp decodes a google.protobuf.Timestamp into Unix nanoseconds.
// Times outside the int64 nanosecond range (years 1677-2262) saturate, so
// validation rejects them as too old or too new.
func (d *protoDecoder) timestamp(pos, end int) (int64, error) {
	var secs, nanos int64
	for pos < end {
		num, typ, next, err := d.tag(pos, end)
		if err != nil {
			return 0, err
		}
		pos = next
		switch num {
		case fieldTimestampSeconds, fieldTimestampNanos:
			if typ != protowire.VarintType {
				return 0, wireTypeError(typ, "Timestamp")
			}
			v, n := protowire.ConsumeVarint(d.buf[pos:end])
			if n < 0 {
				return 0, protowire.ParseError(n)
			}
			pos += n
			if num == fieldTimestampSeconds {
				secs = int64(v)
			} else {
				nanos = int64(int32(v))
			}
		default:
			if pos, err = d.skip(num, typ, pos, end); err != nil {
				return 0, err
			}
		}
	}
	if nanos < 0 || nanos >= nsPerSec {
		return 0, fmt.Errorf("timestamp: nanos not in range [0, 1e9): %d", nanos)
	}
	const (
		maxSecs = int64(math.MaxInt64) / nsPerSec
		minSecs = int64(math.MinInt64)/nsPerSec - 1
	)
	switch {
	case secs > maxSecs || (secs == maxSecs && nanos > int64(math.MaxInt64)%nsPerSec):
		return math.MaxInt64, nil
	case secs < minSecs || (secs == minSecs && nanos < nsPerSec+int64(math.MinInt64)%nsPerSec):
		return math.MinInt64, nil
	}
	return secs*nsPerSec + nanos, nil
}

func (d *protoDecoder) pair(pos, end int) (name, value string, err error) {
	for pos < end {
		num, typ, next, err := d.tag(pos, end)
		if err != nil {
			return "", "", err
		}
		pos = next
		if (num == fieldPairName || num == fieldPairValue) && typ == protowire.BytesType {
			start, stop, err := d.lenDelimited(pos, end)
			if err != nil {
				return "", "", err
			}
			if num == fieldPairName {
				name = d.s[start:stop]
			} else {
				value = d.s[start:stop]
			}
			pos = stop
			continue
		}
		if num == fieldPairName || num == fieldPairValue {
			return "", "", wireTypeError(typ, "LabelPairAdapter")
		}
		if pos, err = d.skip(num, typ, pos, end); err != nil {
			return "", "", err
		}
	}
	return name, value, nil
}

// AppendProto appends the protobuf encoding of a logproto.PushRequest holding
// streams to dst and returns the extended slice. The result is not
// snappy-compressed; wrap it with snappy.Encode for the wire. Stream labels
// are written as Labels.String(); entry metadata as structuredMetadata pairs
// in name order.
func AppendProto(dst []byte, streams []model.Stream) []byte {
	for i := range streams {
		s := &streams[i]
		lstr := s.Labels.String()
		dst = protowire.AppendTag(dst, fieldPushStreams, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(streamSize(lstr, s.Entries)))
		dst = protowire.AppendTag(dst, fieldStreamLabels, protowire.BytesType)
		dst = protowire.AppendString(dst, lstr)
		for j := range s.Entries {
			e := &s.Entries[j]
			dst = protowire.AppendTag(dst, fieldStreamEntries, protowire.BytesType)
			dst = protowire.AppendVarint(dst, uint64(entrySize(e)))
			dst = appendEntry(dst, e)
		}
	}
	return dst
}

func streamSize(lstr string, entries []model.Entry) int {
	n := 1 + protowire.SizeBytes(len(lstr))
	for i := range entries {
		n += 1 + protowire.SizeBytes(entrySize(&entries[i]))
	}
	return n
}

func timestampParts(ts int64) (secs, nanos int64) {
	secs, nanos = ts/1e9, ts%1e9
	if nanos < 0 {
		secs--
		nanos += 1e9
	}
	return secs, nanos
}

func timestampSize(ts int64) int {
	secs, nanos := timestampParts(ts)
	n := 0
	if secs != 0 {
		n += 1 + protowire.SizeVarint(uint64(secs))
	}
	if nanos != 0 {
		n += 1 + protowire.SizeVarint(uint64(nanos))
	}
	return n
}

func pairSize(name, value string) int {
	return 1 + protowire.SizeBytes(len(name)) + 1 + protowire.SizeBytes(len(value))
}

func entrySize(e *model.Entry) int {
	n := 1 + protowire.SizeBytes(timestampSize(e.Timestamp))
	n += 1 + protowire.SizeBytes(len(e.Line))
	e.Metadata.Range(func(l model.Label) {
		n += 1 + protowire.SizeBytes(pairSize(l.Name, l.Value))
	})
	return n
}

func appendEntry(dst []byte, e *model.Entry) []byte {
	// The timestamp is written even when zero: logproto's is non-nullable.
	dst = protowire.AppendTag(dst, fieldEntryTimestamp, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(timestampSize(e.Timestamp)))
	secs, nanos := timestampParts(e.Timestamp)
	if secs != 0 {
		dst = protowire.AppendTag(dst, fieldTimestampSeconds, protowire.VarintType)
		dst = protowire.AppendVarint(dst, uint64(secs))
	}
	if nanos != 0 {
		dst = protowire.AppendTag(dst, fieldTimestampNanos, protowire.VarintType)
		dst = protowire.AppendVarint(dst, uint64(nanos))
	}
	dst = protowire.AppendTag(dst, fieldEntryLine, protowire.BytesType)
	dst = protowire.AppendString(dst, e.Line)
	e.Metadata.Range(func(l model.Label) {
		dst = protowire.AppendTag(dst, fieldEntryMetadata, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(pairSize(l.Name, l.Value)))
		dst = protowire.AppendTag(dst, fieldPairName, protowire.BytesType)
		dst = protowire.AppendString(dst, l.Name)
		dst = protowire.AppendTag(dst, fieldPairValue, protowire.BytesType)
		dst = protowire.AppendString(dst, l.Value)
	})
	return dst
}

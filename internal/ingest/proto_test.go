package ingest

import (
	"errors"
	"math"
	"net/http"
	"runtime"
	"testing"

	"github.com/golang/snappy"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

func requireHTTPError(t testing.TB, err error, status int, msg string) {
	t.Helper()
	require.Error(t, err)
	var he *HTTPError
	require.True(t, errors.As(err, &he), "error %T is not an *HTTPError: %v", err, err)
	require.Equal(t, status, he.Status, "message: %s", he.Msg)
	if msg != "" {
		require.Equal(t, msg, he.Msg)
	}
}

// handBuiltPush is a PushRequest written byte by byte:
//
//	streams { labels: `{app="a"}`
//	          entries { timestamp { seconds: 1 nanos: 2 } line: "hi"
//	                    structuredMetadata { name: "k" value: "v" } }
//	          hash: 7 }
var handBuiltPush = []byte{
	0x0a, 0x26, // streams, 38 bytes
	0x0a, 0x09, '{', 'a', 'p', 'p', '=', '"', 'a', '"', '}', // labels
	0x12, 0x17, // entries, 23 bytes
	0x0a, 0x04, 0x08, 0x01, 0x10, 0x02, // timestamp {1, 2}
	0x12, 0x02, 'h', 'i', // line
	0x1a, 0x06, 0x0a, 0x01, 'k', 0x12, 0x01, 'v', // structuredMetadata
	0x22, 0x03, 0x0a, 0x01, 'x', // parsed (ignored)
	0x18, 0x07, // hash (ignored)
}

func TestDecodeProtoHandBuilt(t *testing.T) {
	req, err := DecodeProto(snappy.Encode(nil, handBuiltPush), 0)
	require.NoError(t, err)
	require.Len(t, req.Streams, 1)
	s := req.Streams[0]
	require.Equal(t, `{app="a"}`, s.Labels.String())
	require.Equal(t, []model.Entry{{Timestamp: 1_000_000_002, Line: "hi", Metadata: model.LabelsFromStrings("k", "v")}}, s.Entries)
	require.Equal(t, "protobuf", req.Format)
}

func TestAppendProtoMatchesHandBuilt(t *testing.T) {
	streams := []model.Stream{{
		Labels:  model.LabelsFromStrings("app", "a"),
		Entries: []model.Entry{{Timestamp: 1_000_000_002, Line: "hi", Metadata: model.LabelsFromStrings("k", "v")}},
	}}
	// handBuiltPush without the parsed pair and the hash, which the encoder
	// never writes.
	want := []byte{
		0x0a, 0x1f,
		0x0a, 0x09, '{', 'a', 'p', 'p', '=', '"', 'a', '"', '}',
		0x12, 0x12,
		0x0a, 0x04, 0x08, 0x01, 0x10, 0x02,
		0x12, 0x02, 'h', 'i',
		0x1a, 0x06, 0x0a, 0x01, 'k', 0x12, 0x01, 'v',
	}
	require.Equal(t, want, AppendProto(nil, streams))
}

func TestAppendProtoRoundTrip(t *testing.T) {
	streams := []model.Stream{
		{
			Labels: model.LabelsFromStrings("app", "api", "env", "prod"),
			Entries: []model.Entry{
				{Timestamp: 0, Line: ""},
				{Timestamp: -1, Line: "before 1970"},
				{Timestamp: math.MaxInt64, Line: "max"},
				{Timestamp: math.MinInt64, Line: "min"},
				{Timestamp: 1_700_000_000_123_456_789, Line: "with metadata", Metadata: model.LabelsFromStrings("trace_id", "abc", "user", "u1")},
			},
		},
		{Labels: model.LabelsFromStrings("job", "x"), Entries: []model.Entry{{Timestamp: 5, Line: "ünïcödé \x00 bytes \xff"}}},
	}
	req, err := DecodeProto(snappy.Encode(nil, AppendProto(nil, streams)), 0)
	require.NoError(t, err)
	require.Equal(t, streams, req.Streams)
}

func TestDecodeProtoErrors(t *testing.T) {
	f := func(name string, raw []byte, msg string) {
		t.Helper()
		_, err := DecodeProto(snappy.Encode(nil, raw), 0)
		requireHTTPError(t, err, http.StatusBadRequest, msg)
	}
	f("truncated stream", []byte{0x0a, 0x05, 0x0a}, "unexpected EOF")
	f("streams as varint", []byte{0x08, 0x01}, "proto: wrong wireType = 0 for field Streams")
	f("labels as varint", []byte{0x0a, 0x02, 0x08, 0x01}, "proto: wrong wireType = 0 for field Labels")
	msg := func(num protowire.Number, body []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), body)
	}
	f("bad label string", msg(fieldPushStreams, msg(fieldStreamLabels, []byte("{1}"))),
		"couldn't parse labels: 1:2: parse error: unexpected character inside braces: '1'")
	ts := protowire.AppendVarint(protowire.AppendTag(nil, fieldTimestampNanos, protowire.VarintType), uint64(math.MaxUint64)) // nanos -1
	entry := msg(fieldEntryTimestamp, ts)
	f("negative nanos", msg(fieldPushStreams, append(msg(fieldStreamLabels, []byte("{}")), msg(fieldStreamEntries, entry)...)),
		"timestamp: nanos not in range [0, 1e9): -1")
	// A label string that is not a label set.
	_, err := DecodeProto([]byte("hello world"), 0)
	requireHTTPError(t, err, http.StatusBadRequest, "snappy: corrupt input")
}

func TestDecodeProtoEmpty(t *testing.T) {
	req, err := DecodeProto(snappy.Encode(nil, nil), 0)
	require.NoError(t, err)
	require.Empty(t, req.Streams)
}

// TestDecodeProtoBomb checks that a tiny body claiming a huge decoded length
// is refused before the decoded buffer is allocated.
func TestDecodeProtoBomb(t *testing.T) {
	body := protowire.AppendVarint(nil, 1<<31) // decoded length header: 2 GiB
	body = append(body, 0x00)                  // and a token
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := DecodeProto(body, 10<<20)
	runtime.ReadMemStats(&after)
	requireHTTPError(t, err, http.StatusRequestEntityTooLarge, "request body too large: 2147483648 bytes, limit: 10485760 bytes")
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20))
}

func TestTimestampSaturates(t *testing.T) {
	f := func(secs int64, nanos int32, want int64) {
		t.Helper()
		ts := protowire.AppendTag(nil, fieldTimestampSeconds, protowire.VarintType)
		ts = protowire.AppendVarint(ts, uint64(secs))
		ts = protowire.AppendTag(ts, fieldTimestampNanos, protowire.VarintType)
		ts = protowire.AppendVarint(ts, uint64(nanos))
		d := protoDecoder{buf: ts, s: string(ts)}
		got, err := d.timestamp(0, len(ts))
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	f(1, 2, 1_000_000_002)
	f(-1, 5, -999_999_995)
	f(9223372036, 854775807, math.MaxInt64)
	f(9223372036, 854775808, math.MaxInt64)
	f(math.MaxInt64, 0, math.MaxInt64)
	f(-9223372037, 145224192, math.MinInt64)
	f(-9223372037, 145224191, math.MinInt64)
	f(-9223372037, 145224193, math.MinInt64+1)
	f(math.MinInt64, 0, math.MinInt64)
}

func TestParseLabelStringDuplicate(t *testing.T) {
	p, err := parseLabelString(`{a="1", a="2"}`)
	require.NoError(t, err)
	require.Equal(t, "a", p.dup)
	require.True(t, p.ls.IsEmpty())
}

func FuzzDecodeProto(f *testing.F) {
	f.Add(handBuiltPush)
	f.Add(AppendProto(nil, []model.Stream{{Labels: model.LabelsFromStrings("a", "b"), Entries: []model.Entry{{Timestamp: 1, Line: "x", Metadata: model.LabelsFromStrings("k", "v")}}}}))
	f.Add([]byte{0x0a, 0x05, 0x0a})
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := DecodeProtoRaw(append([]byte(nil), raw...))
		if err != nil {
			var he *HTTPError
			require.True(t, errors.As(err, &he))
			return
		}
		// Whatever decodes re-encodes to something that decodes equal.
		for _, s := range req.Streams {
			if s.Labels.IsEmpty() {
				return // `{}` re-encodes as "{}" and parses back empty: fine, but Labels may differ in shape
			}
		}
		if req.dup != nil {
			return
		}
		again, err := DecodeProtoRaw(AppendProto(nil, req.Streams))
		require.NoError(t, err)
		require.Equal(t, normalizeStreams(req.Streams), normalizeStreams(again.Streams))
	})
}

// normalizeStreams makes nil and empty entry slices and metadata compare
// equal.
func normalizeStreams(ss []model.Stream) []model.Stream {
	out := make([]model.Stream, len(ss))
	for i, s := range ss {
		out[i] = model.Stream{Labels: s.Labels}
		for _, e := range s.Entries {
			if e.Metadata.IsEmpty() {
				e.Metadata = model.EmptyLabels()
			}
			out[i].Entries = append(out[i].Entries, e)
		}
	}
	return out
}

package ingest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/tenant"
	"github.com/ledgerlog/ledgerlog/internal/units"
)

func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

var testNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ts(d time.Duration) int64 { return testNow.Add(d).UnixNano() }

func stream(labels string, entries ...model.Entry) model.Stream {
	ls, err := model.ParseLabels(labels)
	if err != nil {
		panic(err)
	}
	return model.Stream{Labels: ls, Entries: entries}
}

func entry(d time.Duration, line string, md ...string) model.Entry {
	e := model.Entry{Timestamp: ts(d), Line: line}
	if len(md) > 0 {
		e.Metadata = model.LabelsFromStrings(md...)
	}
	return e
}

func TestValidateRejections(t *testing.T) {
	type tc struct {
		name     string
		limits   func(l *tenant.Limits)
		req      *Request
		status   int
		msg      string
		accepted int // entries returned
		reason   string
	}
	dup, err := DecodeProto(snappy.Encode(nil, protoWithLabelString(`{a="1", a="2"}`)), 0)
	require.NoError(t, err)
	cases := []tc{
		{name: "empty request", req: &Request{}, status: 422, msg: "error at least one valid stream is required for ingestion"},
		{
			name: "too new", req: &Request{Streams: []model.Stream{stream(`{service="b"}`, entry(11*time.Minute, "x"))}},
			status: 400, msg: `entry for stream '{service="b", service_name="b"}' has timestamp too new: 2026-01-01T00:11:00Z`,
			reason: ReasonTooFarInFuture,
		},
		{
			name: "too old", req: &Request{Streams: []model.Stream{stream(`{app="a"}`, entry(-8*24*time.Hour, "x"))}},
			status: 400, msg: `entry for stream '{app="a", service_name="a"}' has timestamp too old: 2025-12-24T00:00:00Z, oldest acceptable timestamp is: 2025-12-25T00:00:00Z`,
			reason: ReasonGreaterThanMaxSampleAge,
		},
		{
			name: "old accepted when not rejecting old samples", limits: func(l *tenant.Limits) { l.RejectOldSamples = false },
			req:      &Request{Streams: []model.Stream{stream(`{app="a"}`, entry(-800*24*time.Hour, "x"))}},
			accepted: 1,
		},
		{
			name: "line too long", limits: func(l *tenant.Limits) { l.MaxLineSize = 10 },
			req:    &Request{Streams: []model.Stream{stream(`{app="a"}`, entry(0, "0123456789x"), entry(0, "0123456789"))}},
			status: 400, msg: `max entry size '10' bytes exceeded for stream '{app="a", service_name="a"}' while adding an entry with length '11' bytes`,
			accepted: 1, reason: ReasonLineTooLong,
		},
		{
			name: "too many label names", limits: func(l *tenant.Limits) { l.MaxLabelNamesPerSeries = 2 },
			req:    &Request{Streams: []model.Stream{stream(`{a="1", b="2", c="3"}`, entry(0, "x"))}},
			status: 400, msg: `entry for stream '{a="1", b="2", c="3", service_name="unknown_service"}' has 3 label names; limit 2`,
			reason: ReasonMaxLabelNamesPerSeries,
		},
		{
			name: "label name too long", limits: func(l *tenant.Limits) { l.MaxLabelNameLength = 3 },
			req:    &Request{Streams: []model.Stream{stream(`{abcd="1"}`, entry(0, "x"))}},
			status: 400, msg: `stream '{abcd="1", service_name="unknown_service"}' has label name too long: 'abcd'`,
			reason: ReasonLabelNameTooLong,
		},
		{
			name: "label value too long", limits: func(l *tenant.Limits) { l.MaxLabelValueLength = 3 },
			req:    &Request{Streams: []model.Stream{stream(`{app="long"}`, entry(0, "x"))}},
			status: 400, msg: `stream '{app="long", service_name="long"}' has label value too long: 'long'`,
			reason: ReasonLabelValueTooLong,
		},
		{
			name: "duplicate label names", req: dup,
			status: 400, msg: `stream '{a="1", a="2"}' has duplicate label name: 'a'`,
			reason: ReasonDuplicateLabelNames,
		},
		{
			name: "missing labels", limits: func(l *tenant.Limits) { l.DiscoverServiceName = nil },
			req:    &Request{Streams: []model.Stream{stream(`{}`, entry(0, "x"))}},
			status: 400, msg: "error at least one label pair is required per stream",
			reason: ReasonMissingLabels,
		},
		{
			name: "empty labels get unknown_service", req: &Request{Streams: []model.Stream{stream(`{}`, entry(0, "x"))}},
			accepted: 1,
		},
		{
			name: "structured metadata disallowed", limits: func(l *tenant.Limits) { l.AllowStructuredMetadata = false },
			req:    &Request{Streams: []model.Stream{stream(`{app="a"}`, entry(0, "x", "k", "v"))}},
			status: 400, msg: "stream '{app=\"a\", service_name=\"a\"}' includes structured metadata, but this feature is disallowed. Please see `limits_config.allow_structured_metadata` or contact your Loki administrator to enable it.",
			reason: ReasonDisallowedStructuredMetadata,
		},
		{
			name: "structured metadata too large", limits: func(l *tenant.Limits) { l.MaxStructuredMetadataSize = 5 },
			req:    &Request{Streams: []model.Stream{stream(`{app="a"}`, entry(0, "x", "key", "val"))}},
			status: 400, msg: "stream '{app=\"a\", service_name=\"a\"}' has structured metadata too large: '6' bytes, limit: '5' bytes. Please see `limits_config.max_structured_metadata_size` or contact your Loki administrator to increase it.",
			reason: ReasonStructuredMetadataTooLarge,
		},
		{
			name: "too many structured metadata entries", limits: func(l *tenant.Limits) { l.MaxStructuredMetadataEntries = 1 },
			req:    &Request{Streams: []model.Stream{stream(`{app="a"}`, entry(0, "x", "a", "1", "b", "2"))}},
			status: 400, msg: "stream '{app=\"a\", service_name=\"a\"}' has too many structured metadata labels: '2', limit: '1'. Please see `limits_config.max_structured_metadata_entries_count` or contact your Loki administrator to increase it.",
			reason: ReasonStructuredMetadataTooMany,
		},
		{
			name: "ingestion rate", limits: func(l *tenant.Limits) {
				l.IngestionRateMB, l.IngestionBurstSizeMB, l.DiscoverLogLevels = 0.05, 0.05, false
			},
			req: &Request{Streams: []model.Stream{stream(`{app="a"}`, func() []model.Entry {
				var es []model.Entry
				for range 100 {
					es = append(es, entry(0, strings.Repeat("x", 1000)))
				}
				return es
			}()...)}},
			status: 429, msg: "ingestion rate limit exceeded for user fake (limit: 52428 bytes/sec) while attempting to ingest '100' lines totaling '100000' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased",
			reason: ReasonRateLimited,
		},
		{
			name: "per-stream rate", limits: func(l *tenant.Limits) { l.PerStreamRateLimit, l.PerStreamRateLimitBurst = 10, 10 },
			req: &Request{Streams: []model.Stream{stream(`{app="a"}`,
				entry(0, "123456"), entry(time.Second, "abcdef"), entry(2*time.Second, "ABCDEF"))}},
			status: 429, accepted: 1, reason: ReasonStreamRateLimit,
			msg: "entry with timestamp 2026-01-01 00:00:01 +0000 UTC ignored, reason: 'Per stream rate limit exceeded (limit: 10B/sec) while attempting to ingest for stream '{app=\"a\", service_name=\"a\"}' totaling 6B, consider splitting a stream via additional labels or contact your Loki administrator to see if the limit can be increased',\n" +
				"entry with timestamp 2026-01-01 00:00:02 +0000 UTC ignored, reason: 'Per stream rate limit exceeded (limit: 10B/sec) while attempting to ingest for stream '{app=\"a\", service_name=\"a\"}' totaling 6B, consider splitting a stream via additional labels or contact your Loki administrator to see if the limit can be increased',\n" +
				"user 'fake', total ignored: 2 out of 3 for stream: {app=\"a\", service_name=\"a\"}",
		},
		{
			name: "per-stream rate, whole stream", limits: func(l *tenant.Limits) {
				l.PerStreamRateLimit, l.PerStreamRateLimitBurst, l.ShardStreams.Enabled = 10, 10, true
			},
			req:    &Request{Streams: []model.Stream{stream(`{app="a"}`, entry(0, "123456"), entry(time.Second, "abcdef"))}},
			status: 429, reason: ReasonStreamRateLimit,
		},
		{
			name: "grouped errors", limits: func(l *tenant.Limits) { l.MaxLineSize = 3 },
			req: &Request{Streams: []model.Stream{
				stream(`{app="a"}`, entry(0, "long"), entry(0, "long"), entry(time.Hour, "x"), entry(0, "ok")),
			}},
			status: 400, accepted: 1, reason: ReasonLineTooLong,
			msg: `2 errors like: max entry size '3' bytes exceeded for stream '{app="a", service_name="a"}' while adding an entry with length '4' bytes; ` +
				`1 errors like: entry for stream '{app="a", service_name="a"}' has timestamp too new: 2026-01-01T01:00:00Z`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			v := NewValidator(reg, nil)
			l := tenant.Defaults()
			if c.limits != nil {
				c.limits(&l)
			}
			got, err := v.Validate("fake", &l, c.req, testNow)
			if c.status == 0 {
				require.NoError(t, err)
			} else {
				requireHTTPError(t, err, c.status, c.msg)
			}
			n := 0
			for _, s := range got {
				n += len(s.Entries)
			}
			require.Equal(t, c.accepted, n)
			if c.reason != "" {
				require.Positive(t, counterValue(t, v.m.discardedSamples.WithLabelValues(c.reason, "fake")))
				require.Positive(t, counterValue(t, v.m.discardedBytes.WithLabelValues(c.reason, "fake")))
			}
		})
	}
}

// protoWithLabelString encodes one stream with one entry under a raw label
// string, which model.Labels cannot express when it repeats a name.
func protoWithLabelString(labels string) []byte {
	e := model.Entry{Timestamp: ts(0), Line: "l"}
	st := protowire.AppendTag(nil, fieldStreamLabels, protowire.BytesType)
	st = protowire.AppendString(st, labels)
	st = protowire.AppendTag(st, fieldStreamEntries, protowire.BytesType)
	st = protowire.AppendBytes(st, appendEntry(nil, &e))
	return protowire.AppendBytes(protowire.AppendTag(nil, fieldPushStreams, protowire.BytesType), st)
}

func TestValidatePartialAcceptance(t *testing.T) {
	v := NewValidator(prometheus.NewRegistry(), nil)
	l := tenant.Defaults()
	req := &Request{Streams: []model.Stream{
		stream(`{app="good"}`, entry(0, "one"), entry(time.Second, "two")),
		stream(`{app="bad"}`, entry(0, "fine"), entry(time.Hour, "future")),
		stream(`{app="empty"}`),
	}}
	got, err := v.Validate("t1", &l, req, testNow)
	requireHTTPError(t, err, http.StatusBadRequest, `entry for stream '{app="bad", service_name="bad"}' has timestamp too new: 2026-01-01T01:00:00Z`)
	require.Len(t, got, 2)
	require.Equal(t, `{app="good", service_name="good"}`, got[0].Labels.String())
	require.Len(t, got[0].Entries, 2)
	require.Equal(t, `{app="bad", service_name="bad"}`, got[1].Labels.String())
	require.Equal(t, []model.Entry{{Timestamp: ts(0), Line: "fine", Metadata: model.LabelsFromStrings("detected_level", "unknown")}}, got[1].Entries)

	require.Equal(t, 4.0, counterValue(t, v.m.linesReceived.WithLabelValues("t1")))
	require.Equal(t, float64(len("onetwofinefuture")), counterValue(t, v.m.bytesReceived.WithLabelValues("t1")))
	require.Equal(t, 1.0, counterValue(t, v.m.discardedSamples.WithLabelValues(ReasonTooFarInFuture, "t1")))
	require.Equal(t, 6.0, counterValue(t, v.m.discardedBytes.WithLabelValues(ReasonTooFarInFuture, "t1")))
}

func TestValidateTruncate(t *testing.T) {
	v := NewValidator(prometheus.NewRegistry(), nil)
	l := tenant.Defaults()
	l.MaxLineSize, l.MaxLineSizeTruncate = 4, true
	got, err := v.Validate("fake", &l, &Request{Streams: []model.Stream{stream(`{app="a"}`, entry(0, "123456"))}}, testNow)
	require.NoError(t, err)
	require.Equal(t, "1234", got[0].Entries[0].Line)
	require.Equal(t, 1.0, counterValue(t, v.m.mutatedSamples.WithLabelValues(ReasonLineTooLong, "fake")))
	require.Equal(t, 2.0, counterValue(t, v.m.mutatedBytes.WithLabelValues(ReasonLineTooLong, "fake")))
}

func TestValidateAllStreamsEmpty(t *testing.T) {
	v := NewValidator(nil, nil)
	l := tenant.Defaults()
	got, err := v.Validate("fake", &l, &Request{Streams: []model.Stream{stream(`{app="a"}`)}}, testNow)
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestServiceName(t *testing.T) {
	f := func(labels string, discover []string, want string) {
		t.Helper()
		ls, err := model.ParseLabels(labels)
		require.NoError(t, err)
		require.Equal(t, want, withServiceName(ls, discover).String())
	}
	def := tenant.DefaultServiceNameLabels
	f(`{job="j", app="a"}`, def, `{app="a", job="j", service_name="a"}`)
	f(`{job="j"}`, def, `{job="j", service_name="j"}`)
	f(`{x="1"}`, def, `{service_name="unknown_service", x="1"}`)
	f(`{service_name="s", app="a"}`, def, `{app="a", service_name="s"}`)
	f(`{app="a"}`, nil, `{app="a"}`)
	f(`{__aggregated_metric__="a"}`, def, `{__aggregated_metric__="a"}`)
	f(`{k8s_container_name="c", container="d"}`, def, `{container="d", k8s_container_name="c", service_name="d"}`)
}

func TestDetectedLevel(t *testing.T) {
	f := func(labels string, e model.Entry, limits func(l *tenant.Limits), want string) {
		t.Helper()
		v := NewValidator(nil, nil)
		l := tenant.Defaults()
		if limits != nil {
			limits(&l)
		}
		got, err := v.Validate("fake", &l, &Request{Streams: []model.Stream{stream(labels, e)}}, testNow)
		require.NoError(t, err)
		md := got[0].Entries[0].Metadata
		if want == "" {
			require.False(t, md.Has(LabelDetectedLevel), "metadata %s", md)
			return
		}
		require.Equal(t, want, md.Get(LabelDetectedLevel), "metadata %s", md)
	}
	// From a stream label, normalised; non-level values are kept.
	f(`{app="a", level="ERROR"}`, entry(0, "info line"), nil, "error")
	f(`{app="a", lvl="Warning"}`, entry(0, "x", "k", "v"), nil, "warn")
	f(`{app="a", level="notice"}`, entry(0, "x"), nil, "notice")
	// From structured metadata.
	f(`{app="a"}`, entry(0, "debug text", "severity", "INF"), nil, "info")
	f(`{app="a"}`, entry(0, "x", "detected_level", "Err"), nil, "error")
	f(`{app="a"}`, entry(0, "x", "severity_number", "17"), nil, "error")
	f(`{app="a"}`, entry(0, "x", "severity_number", "9"), nil, "info")
	// From a JSON line: top level and one level down, strings only.
	f(`{app="a"}`, entry(0, `{"msg":"error happened","level":"debug"}`), nil, "debug")
	f(`{app="a"}`, entry(0, ` {"a":{"lvl":"WRN"},"b":1} `), nil, "warn")
	f(`{app="a"}`, entry(0, `{"a":{"b":{"level":"wrn"}}}`), nil, "unknown")
	f(`{app="a"}`, entry(0, `{"level":30,"msg":"fatal crash"}`), nil, "fatal")
	f(`{app="a"}`, entry(0, `{"level":"verbose","msg":"x"}`), nil, "unknown")
	// From logfmt; keys compared ignoring case, the earliest field wins.
	f(`{app="a"}`, entry(0, `ts=1 severity=error LEVEL="info" msg="x"`), nil, "info")
	f(`{app="a"}`, entry(0, `msg="disk error" level=warn`), nil, "warn")
	// Keywords: the first occurrence of each word counts, if it stands alone.
	f(`{app="a"}`, entry(0, "request failed: ERROR 500"), nil, "error")
	f(`{app="a"}`, entry(0, "errors: 3, information"), nil, "unknown")
	f(`{app="a"}`, entry(0, "[WARN] low disk; debug_mode on"), nil, "warn")
	f(`{app="a"}`, entry(0, "trace id=1 info"), nil, "trace")
	f(`{app="a"}`, entry(0, "plain"), nil, "unknown")
	// Conditions.
	f(`{app="a"}`, entry(0, "error"), func(l *tenant.Limits) { l.DiscoverLogLevels = false }, "")
	f(`{app="a", detected_level="x"}`, entry(0, "error"), nil, "")
	f(`{app="a", severity="ERROR"}`, entry(0, "x"), func(l *tenant.Limits) { l.LogLevelFields = []string{"severity"} }, "error")
	f(`{app="a", level="debug"}`, entry(0, "x"), func(l *tenant.Limits) { l.LogLevelFields = []string{"severity"} }, "unknown")
}

func TestDetectedLevelNoStructuredMetadata(t *testing.T) {
	v := NewValidator(nil, nil)
	l := tenant.Defaults()
	l.AllowStructuredMetadata = false
	got, err := v.Validate("fake", &l, &Request{Streams: []model.Stream{stream(`{app="a"}`, entry(0, "error"))}}, testNow)
	require.NoError(t, err)
	require.True(t, got[0].Entries[0].Metadata.IsEmpty())
}

func TestMetadataSanitised(t *testing.T) {
	v := NewValidator(nil, nil)
	l := tenant.Defaults()
	l.DiscoverLogLevels = false
	got, err := v.Validate("fake", &l, &Request{Streams: []model.Stream{
		stream(`{app="a"}`, entry(0, "x", "trace.id", "t", "1st", "v", "_x", "bad\xffutf8", "__y", "z")),
	}}, testNow)
	require.NoError(t, err)
	require.Equal(t, model.LabelsFromStrings("__y", "z", "key_1st", "v", "key_x", "badutf8", "trace_id", "t"), got[0].Entries[0].Metadata)
}

func TestRateLimiterRefills(t *testing.T) {
	rl := NewRateLimiter()
	now := testNow
	require.True(t, rl.AllowTenant("t", now, 100, 100, 100))
	require.False(t, rl.AllowTenant("t", now, 1, 100, 100))
	require.True(t, rl.AllowTenant("t", now.Add(500*time.Millisecond), 50, 100, 100))
	require.False(t, rl.AllowTenant("t", now.Add(500*time.Millisecond), 1, 100, 100))
	require.False(t, rl.AllowTenant("t", now.Add(time.Hour), 101, 100, 100), "more than the burst never passes")
	require.True(t, rl.AllowTenant("t", now.Add(time.Hour), 1, 0, 0), "a rate of 0 disables the limit")
	require.True(t, rl.AllowTenant("other", now, 100, 100, 100), "tenants have their own buckets")
}

func TestRateLimiterForgetsIdleStreams(t *testing.T) {
	rl := NewRateLimiter()
	key := streamKey("t", `{a="b"}`)
	ns := testNow.UnixNano()
	rl.withStreamBucket(key, ns, 10, 10, func(b *tokenBucket) { require.True(t, b.allowN(ns, 10, 10, 10)) })
	sh := &rl.streams[key%rateShards]
	require.Len(t, sh.m, 1)
	later := ns + int64(time.Minute)
	rl.withStreamBucket(streamKey("t", `{c="d"}`)&^(rateShards-1)|key%rateShards, later, 10, 10, func(*tokenBucket) {})
	_, ok := sh.m[key]
	require.False(t, ok, "a refilled bucket is forgotten")
}

func TestFormatByteSize(t *testing.T) {
	f := func(n int64, want string) {
		t.Helper()
		require.Equal(t, want, formatByteSize(n))
	}
	f(0, "0B")
	f(380, "380B")
	f(3<<20, "3MB")
	f(15<<20, "15MB")
	f(1536<<10, "1536KB")
	f(1<<30, "1GB")
}

func TestValidateZeroLimitsDisable(t *testing.T) {
	// Limits of 0 disable checks.
	v := NewValidator(nil, nil)
	l := tenant.Defaults()
	l.MaxLineSize, l.MaxLabelNamesPerSeries, l.MaxLabelNameLength, l.MaxLabelValueLength = 0, 0, 0, 0
	l.MaxStructuredMetadataSize, l.MaxStructuredMetadataEntries = units.ByteSize(0), 0
	l.PerStreamRateLimit, l.IngestionRateMB = 0, 0
	got, err := v.Validate("fake", &l, &Request{Streams: []model.Stream{
		stream(`{a="1", b="2", c="3", d="4", e="5", f="6", g="7", h="8", i="9", j="10", k="11", l="12", m="13", n="14", o="15", p="16"}`,
			entry(0, strings.Repeat("x", 1<<20), "k", strings.Repeat("v", 100<<10))),
	}}, testNow)
	require.NoError(t, err)
	require.Len(t, got, 1)
}

// TestConcurrentDecodeAndValidate runs decoders and one validator from many
// goroutines, for the race detector: the label cache, the level sets and the
// rate limiter are shared.
func TestConcurrentDecodeAndValidate(t *testing.T) {
	streams, _, _ := benchStreams(false)
	body := snappy.Encode(nil, AppendProto(nil, streams[:4]))
	v := NewValidator(prometheus.NewRegistry(), nil)
	l := tenant.Defaults()
	l.IngestionRateMB, l.IngestionBurstSizeMB = 1e6, 1e6
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for range 5 {
				req, err := DecodeProto(body, 0)
				if err == nil {
					_, err = v.Validate(fmt.Sprintf("t%d", g%3), &l, req, testNow)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		require.NoError(t, <-errs)
	}
}

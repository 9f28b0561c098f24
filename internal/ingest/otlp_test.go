package ingest

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/tenant"
)

func strAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func sampleLogs() *logspb.LogsData {
	traceID := []byte{0x5b, 0x8e, 0xfF, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c}
	spanID := []byte{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74}
	return &logspb.LogsData{ResourceLogs: []*logspb.ResourceLogs{
		{
			Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
				strAttr("service.name", "checkout"),
				strAttr("k8s.namespace.name", "prod"),
				strAttr("host.name", "node-1"),
				{Key: "process", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{
					{Key: "pid", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 42}}},
				}}}}},
			}},
			ScopeLogs: []*logspb.ScopeLogs{{
				Scope: &commonpb.InstrumentationScope{Name: "lib", Version: "1.2", Attributes: []*commonpb.KeyValue{strAttr("scope.attr", "s")}},
				LogRecords: []*logspb.LogRecord{
					{
						TimeUnixNano:         1_700_000_000_000_000_001,
						ObservedTimeUnixNano: 1_700_000_000_000_000_002,
						SeverityNumber:       logspb.SeverityNumber_SEVERITY_NUMBER_ERROR,
						SeverityText:         "Error",
						Body:                 &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "payment failed"}},
						Attributes:           []*commonpb.KeyValue{strAttr("user.id", "u1"), {Key: "ok", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: false}}}},
						Flags:                1,
						TraceId:              traceID,
						SpanId:               spanID,
					},
					{
						ObservedTimeUnixNano: 1_700_000_000_000_000_003,
						Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{
							strAttr("b", "<x>"),
							{Key: "a", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 1.5}}},
							{Key: "c", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{
								{Value: &commonpb.AnyValue_IntValue{IntValue: 1}},
								{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte("hi")}},
							}}}}},
						}}}},
					},
				},
			}},
		},
		{
			// Same index labels as the first resource: the same stream.
			Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
				strAttr("k8s.namespace.name", "prod"), strAttr("service.name", "checkout"),
			}},
			ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{{TimeUnixNano: 5, Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 7}}}}}},
		},
		{
			// No service.name: Validate discovers it or uses unknown_service.
			Resource:  &resourcepb.Resource{},
			ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{{TimeUnixNano: 6}}}},
		},
		{
			// A resource without records adds no stream.
			Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strAttr("service.name", "idle")}},
		},
	}}
}

var sampleWant = []model.Stream{
	{
		Labels: model.LabelsFromStrings("k8s_namespace_name", "prod", "service_name", "checkout"),
		Entries: []model.Entry{
			{
				Timestamp: 1_700_000_000_000_000_001, Line: "payment failed",
				Metadata: model.LabelsFromStrings(
					"flags", "1",
					"host_name", "node-1",
					"observed_timestamp", "1700000000000000002",
					"ok", "false",
					"process_pid", "42",
					"scope_attr", "s",
					"scope_name", "lib",
					"scope_version", "1.2",
					"severity_number", "17",
					"severity_text", "Error",
					"span_id", "eee19b7ec3c1b174",
					"trace_id", "5b8efff798038103d269b633813fc60c",
					"user_id", "u1",
				),
			},
			{
				Timestamp: 1_700_000_000_000_000_003, Line: `{"a":1.5,"b":"\u003cx\u003e","c":[1,"aGk="]}`,
				Metadata: model.LabelsFromStrings("host_name", "node-1", "process_pid", "42", "scope_attr", "s", "scope_name", "lib", "scope_version", "1.2"),
			},
			{Timestamp: 5, Line: "7"},
		},
	},
	{Labels: model.EmptyLabels(), Entries: []model.Entry{{Timestamp: 6, Line: ""}}},
}

func TestDecodeOTLPProtobuf(t *testing.T) {
	body, err := proto.Marshal(sampleLogs())
	require.NoError(t, err)
	req, err := DecodeOTLP(body, false, OTLPConfig{}, testNow)
	require.NoError(t, err)
	require.Equal(t, normalizeStreams(sampleWant), normalizeStreams(req.Streams))
}

// otlpJSON is the OTLP JSON encoding of part of sampleLogs, written as the
// OTLP specification writes it: hex ids, lowerCamelCase, int64 as strings.
const otlpJSON = `{"resourceLogs":[{"resource":{"attributes":[
  {"key":"service.name","value":{"stringValue":"checkout"}},
  {"key":"k8s.namespace.name","value":{"stringValue":"prod"}}]},
 "scopeLogs":[{"scope":{"name":"lib"},"logRecords":[{
  "timeUnixNano":"1700000000000000001","severityNumber":17,"severityText":"Error",
  "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
  "body":{"stringValue":"payment failed"},
  "attributes":[{"key":"n","value":{"intValue":"3"}}],
  "someFutureField":true}]}]}]}`

func TestDecodeOTLPJSON(t *testing.T) {
	req, err := DecodeOTLP([]byte(otlpJSON), true, OTLPConfig{}, testNow)
	require.NoError(t, err)
	require.Equal(t, []model.Stream{{
		Labels: model.LabelsFromStrings("k8s_namespace_name", "prod", "service_name", "checkout"),
		Entries: []model.Entry{{
			Timestamp: 1_700_000_000_000_000_001, Line: "payment failed",
			Metadata: model.LabelsFromStrings("n", "3", "scope_name", "lib", "severity_number", "17", "severity_text", "Error",
				"span_id", "eee19b7ec3c1b174", "trace_id", "5b8efff798038103d269b633813fc60c"),
		}},
	}}, req.Streams)

	// protojson's own (base64) encoding of the same data decodes alike.
	b, err := protojson.Marshal(sampleLogs())
	require.NoError(t, err)
	req, err = DecodeOTLP(b, true, OTLPConfig{}, testNow)
	require.NoError(t, err)
	require.Equal(t, normalizeStreams(sampleWant), normalizeStreams(req.Streams))
}

func TestOTLPConfigActions(t *testing.T) {
	re, err := NewOTLPRegexp("host\\..*")
	require.NoError(t, err)
	cfg := OTLPConfig{
		ResourceAttributes: OTLPResourceAttributes{
			IgnoreDefaults: true,
			AttributesConfig: []OTLPAttributes{
				{Action: OTLPIndexLabel, Attributes: []string{"service.name"}},
				{Action: OTLPIndexLabel, Regex: re},
				{Action: OTLPDrop, Attributes: []string{"process"}},
			},
		},
		ScopeAttributes: []OTLPAttributes{{Action: OTLPDrop, Attributes: []string{"scope.attr"}}},
		LogAttributes:   []OTLPAttributes{{Action: OTLPDrop, Regex: mustRegexp(t, "user\\..*|ok")}},
	}
	require.NoError(t, cfg.Validate())
	body, err := proto.Marshal(sampleLogs())
	require.NoError(t, err)
	req, err := DecodeOTLP(body, false, cfg, testNow)
	require.NoError(t, err)
	require.Equal(t, `{host_name="node-1", service_name="checkout"}`, req.Streams[0].Labels.String())
	md := req.Streams[0].Entries[0].Metadata
	require.Equal(t, "prod", md.Get("k8s_namespace_name"), "not an index label once defaults are ignored")
	for _, dropped := range []string{"process_pid", "scope_attr", "user_id", "ok", "host_name"} {
		require.False(t, md.Has(dropped), dropped)
	}

	bad := OTLPConfig{LogAttributes: []OTLPAttributes{{Action: OTLPIndexLabel, Attributes: []string{"x"}}}}
	require.EqualError(t, bad.Validate(), "otlp_config log_attributes: index_label action is only supported for resource_attributes")
}

func mustRegexp(t *testing.T, expr string) OTLPRegexp {
	t.Helper()
	re, err := NewOTLPRegexp(expr)
	require.NoError(t, err)
	return re
}

// TestParseOTLPHTTP sends OTLP over loopback HTTP, validates it, and checks
// the response body helper.
func TestParseOTLPHTTP(t *testing.T) {
	v := NewValidator(prometheus.NewRegistry(), nil)
	l := tenant.Defaults()
	l.RejectOldSamples = false // sampleLogs has records at 5 ns and 6 ns
	var got []model.Stream
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := ParseOTLP(r, 1<<20, OTLPConfig{})
		if err == nil {
			got, err = v.Validate("fake", &l, req, time.Unix(0, 1_700_000_000_000_000_000))
		}
		if err != nil {
			var he *HTTPError
			if !errors.As(err, &he) {
				http.Error(w, "not an HTTPError: "+err.Error(), http.StatusInternalServerError)
				return
			}
			http.Error(w, he.Msg, he.Status)
			return
		}
		body, ct := OTLPResponse(r)
		w.Header().Set("Content-Type", ct)
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	send := func(ct, enc string, body []byte) (int, string, string) {
		r, err := http.NewRequest(http.MethodPost, srv.URL+"/otlp/v1/logs", bytes.NewReader(body))
		require.NoError(t, err)
		r.Header.Set("Content-Type", ct)
		if enc != "" {
			r.Header.Set("Content-Encoding", enc)
		}
		resp, err := http.DefaultClient.Do(r)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	pb, err := proto.Marshal(sampleLogs())
	require.NoError(t, err)

	status, ct, body := send("application/x-protobuf", "gzip", gzipped(pb))
	require.Equal(t, 200, status, body)
	require.Equal(t, "application/x-protobuf", ct)
	require.Empty(t, body)
	require.Len(t, got, 2)
	require.Equal(t, `{k8s_namespace_name="prod", service_name="checkout"}`, got[0].Labels.String())
	require.Equal(t, "error", got[0].Entries[0].Metadata.Get(LabelDetectedLevel), "from severity_text")
	require.Equal(t, `{service_name="unknown_service"}`, got[1].Labels.String())

	status, ct, body = send("application/json", "", []byte(otlpJSON))
	require.Equal(t, 200, status, body)
	require.Equal(t, "application/json", ct)
	require.Equal(t, "{}", body)

	status, _, body = send("text/plain", "", pb)
	require.Equal(t, 400, status)
	require.Equal(t, "content type: text/plain is not supported\n", body)

	status, _, body = send("application/x-protobuf", "", []byte{0x0a, 0x05})
	require.Equal(t, 400, status, body)

	empty, err := proto.Marshal(&logspb.LogsData{})
	require.NoError(t, err)
	status, _, body = send("application/x-protobuf", "", empty)
	require.Equal(t, 422, status)
	require.Equal(t, "error at least one valid stream is required for ingestion\n", body)
}

func FuzzDecodeOTLP(f *testing.F) {
	pb, _ := proto.Marshal(sampleLogs())
	f.Add(pb, false)
	f.Add([]byte(otlpJSON), true)
	f.Add([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"kvlistValue":{"values":[{"key":"a","value":{"doubleValue":"NaN"}}]}}}]}]}]}`), true)
	f.Fuzz(func(t *testing.T, body []byte, isJSON bool) {
		req, err := DecodeOTLP(body, isJSON, OTLPConfig{}, testNow)
		if err != nil {
			var he *HTTPError
			require.True(t, errors.As(err, &he))
			return
		}
		// Every accepted request goes through validation without panicking.
		l := tenant.Defaults()
		_, _ = NewValidator(nil, nil).Validate("fake", &l, req, testNow)
	})
}

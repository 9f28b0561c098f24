package ingest

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// OTLPAction is what happens to an OTLP attribute.
type OTLPAction string

// OTLP attribute actions, as in Loki's otlp_config.
const (
	OTLPIndexLabel         OTLPAction = "index_label"
	OTLPStructuredMetadata OTLPAction = "structured_metadata"
	OTLPDrop               OTLPAction = "drop"
)

// DefaultOTLPIndexLabels are the resource attributes Loki turns into index
// labels (with '.' → '_') unless a tenant's otlp_config ignores the defaults.
var DefaultOTLPIndexLabels = []string{
	"service.name", "service.namespace", "service.instance.id",
	"deployment.environment", "deployment.environment.name",
	"cloud.region", "cloud.availability_zone",
	"k8s.cluster.name", "k8s.namespace.name", "k8s.pod.name", "k8s.container.name", "container.name",
	"k8s.replicaset.name", "k8s.deployment.name", "k8s.statefulset.name", "k8s.daemonset.name",
	"k8s.cronjob.name", "k8s.job.name",
}

// OTLPConfig is a tenant's otlp_config, with Loki's keys. The zero value is
// Loki's default mapping.
type OTLPConfig struct {
	ResourceAttributes OTLPResourceAttributes `yaml:"resource_attributes,omitempty"`
	ScopeAttributes    []OTLPAttributes       `yaml:"scope_attributes,omitempty"`
	LogAttributes      []OTLPAttributes       `yaml:"log_attributes,omitempty"`
}

// OTLPResourceAttributes configures resource attributes; unless
// IgnoreDefaults, DefaultOTLPIndexLabels are index labels first.
type OTLPResourceAttributes struct {
	IgnoreDefaults   bool             `yaml:"ignore_defaults,omitempty"`
	AttributesConfig []OTLPAttributes `yaml:"attributes_config,omitempty"`
}

// OTLPAttributes applies Action to the attributes named in Attributes or
// matching Regex (anchored, as a relabel regex).
type OTLPAttributes struct {
	Action     OTLPAction `yaml:"action,omitempty"`
	Attributes []string   `yaml:"attributes,omitempty"`
	Regex      OTLPRegexp `yaml:"regex,omitempty"`
}

// OTLPRegexp is an anchored regular expression read from YAML.
type OTLPRegexp struct {
	*regexp.Regexp
}

// NewOTLPRegexp compiles an anchored expression.
func NewOTLPRegexp(expr string) (OTLPRegexp, error) {
	re, err := regexp.Compile("^(?:" + expr + ")$")
	if err != nil {
		return OTLPRegexp{}, fmt.Errorf("compile otlp attribute regex %q: %w", expr, err)
	}
	return OTLPRegexp{re}, nil
}

// UnmarshalYAML compiles the expression.
func (r *OTLPRegexp) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	re, err := NewOTLPRegexp(s)
	if err != nil {
		return err
	}
	*r = re
	return nil
}

// MarshalYAML writes the expression without its anchors.
func (r OTLPRegexp) MarshalYAML() (any, error) {
	if r.Regexp == nil {
		return nil, nil
	}
	s := r.String()
	return strings.TrimSuffix(strings.TrimPrefix(s, "^(?:"), ")$"), nil
}

// Validate checks the actions: index_label only for resource attributes.
func (c *OTLPConfig) Validate() error {
	check := func(where string, cfgs []OTLPAttributes, indexAllowed bool) error {
		for _, a := range cfgs {
			switch a.Action {
			case "", OTLPStructuredMetadata, OTLPDrop:
			case OTLPIndexLabel:
				if !indexAllowed {
					return fmt.Errorf("otlp_config %s: %s action is only supported for resource_attributes", where, OTLPIndexLabel)
				}
			default:
				return fmt.Errorf("otlp_config %s: unsupported action %q, it must be one of: drop, index_label, structured_metadata", where, a.Action)
			}
			if len(a.Attributes) == 0 && a.Regex.Regexp == nil {
				return fmt.Errorf("otlp_config %s: attributes or regex must be set", where)
			}
			if len(a.Attributes) != 0 && a.Regex.Regexp != nil {
				return fmt.Errorf("otlp_config %s: only one of attributes or regex must be set", where)
			}
		}
		return nil
	}
	if err := check("resource_attributes", c.ResourceAttributes.AttributesConfig, true); err != nil {
		return err
	}
	if err := check("scope_attributes", c.ScopeAttributes, false); err != nil {
		return err
	}
	return check("log_attributes", c.LogAttributes, false)
}

func actionFor(name string, cfgs []OTLPAttributes) OTLPAction {
	for _, c := range cfgs {
		if c.Regex.Regexp != nil && c.Regex.MatchString(name) {
			return orSM(c.Action)
		}
		for _, a := range c.Attributes {
			if a == name {
				return orSM(c.Action)
			}
		}
	}
	return OTLPStructuredMetadata
}

func orSM(a OTLPAction) OTLPAction {
	if a == "" {
		return OTLPStructuredMetadata
	}
	return a
}

func (c *OTLPConfig) resourceAction(name string) OTLPAction {
	if !c.ResourceAttributes.IgnoreDefaults {
		for _, a := range DefaultOTLPIndexLabels {
			if a == name {
				return OTLPIndexLabel
			}
		}
	}
	return actionFor(name, c.ResourceAttributes.AttributesConfig)
}

// nonResourceAction is the action for a scope or log attribute: index_label
// is not allowed there and counts as structured metadata.
func nonResourceAction(name string, cfgs []OTLPAttributes) OTLPAction {
	if a := actionFor(name, cfgs); a == OTLPDrop {
		return OTLPDrop
	}
	return OTLPStructuredMetadata
}

// ParseOTLP reads an OTLP/HTTP logs export (POST /otlp/v1/logs): an
// ExportLogsServiceRequest as protobuf (application/x-protobuf) or OTLP JSON
// (application/json, hex trace and span ids), optionally gzip-compressed.
// maxBody (if > 0) limits the body on the wire and after decompression (413).
//
// The mapping is Loki's: resource attributes named by cfg (by default
// DefaultOTLPIndexLabels) become stream labels with names sanitised ('.' →
// '_'); all other resource, scope and log attributes become structured
// metadata (nested maps flattened as parent_child), together with
// observed_timestamp, severity_number, severity_text,
// dropped_attributes_count, flags, trace_id, span_id, scope_name,
// scope_version and scope_dropped_attributes_count where set. The body is the
// line (non-string bodies JSON-encoded); the timestamp is time_unix_nano, else
// observed_time_unix_nano, else the time of receipt. Records of resources
// with the same labels share one stream. service_name, when the resource has
// no service.name, is added by Validate like for every push.
func ParseOTLP(r *http.Request, maxBody int64, cfg OTLPConfig) (*Request, error) {
	enc := r.Header.Get("Content-Encoding")
	if enc != "" && enc != "gzip" {
		return nil, httpErrorf(http.StatusBadRequest, msgEncodingUnsupported, enc)
	}
	ct := r.Header.Get("Content-Type")
	mediaType, _, err := mime.ParseMediaType(ct)
	if err != nil || (mediaType != contentTypeProtobuf && mediaType != contentTypeJSON) {
		return nil, httpErrorf(http.StatusBadRequest, msgOTLPContentType, ct)
	}
	wire := bodyPool.Get().(*bytes.Buffer)
	defer putBody(wire)
	if err := readBody(wire, r.Body, r.ContentLength, maxBody); err != nil {
		return nil, err
	}
	body := wire.Bytes()
	if enc == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, badRequest(err)
		}
		if body, err = inflate(zr, maxBody); err != nil {
			return nil, err
		}
	}
	req, err := DecodeOTLP(body, mediaType == contentTypeJSON, cfg, time.Now())
	if err != nil {
		return nil, err
	}
	req.BodySize = int64(wire.Len())
	return req, nil
}

// DecodeOTLP decodes an uncompressed ExportLogsServiceRequest (protobuf, or
// OTLP JSON if isJSON) and maps it as ParseOTLP describes; now is the
// timestamp of records that carry none. body is not retained.
func DecodeOTLP(body []byte, isJSON bool, cfg OTLPConfig, now time.Time) (*Request, error) {
	// LogsData is wire- and JSON-identical to ExportLogsServiceRequest
	// (field 1, resourceLogs) and spares the gRPC service dependency.
	var data logspb.LogsData
	if isJSON {
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, &data); err != nil {
			return nil, badRequest(err)
		}
		fixJSONIDs(&data)
	} else if err := proto.Unmarshal(body, &data); err != nil {
		return nil, badRequest(err)
	}
	return otlpToRequest(&data, cfg, now.UnixNano()), nil
}

// fixJSONIDs repairs trace and span ids of OTLP JSON. The OTLP JSON encoding
// writes them in hex, where protojson expects base64; hex digits are base64
// digits, so protojson decodes 32 hex digits into 24 meaningless bytes whose
// base64 form is the original hex string again. Ids sent in base64 (not
// OTLP-conformant, but seen) decode to the right length and are kept.
func fixJSONIDs(data *logspb.LogsData) {
	fix := func(b []byte, want int) []byte {
		if len(b) != want*3/2 {
			return b
		}
		if id, err := hex.DecodeString(base64.StdEncoding.EncodeToString(b)); err == nil && len(id) == want {
			return id
		}
		return b
	}
	for _, rl := range data.GetResourceLogs() {
		for _, sl := range rl.GetScopeLogs() {
			for _, lr := range sl.GetLogRecords() {
				lr.TraceId = fix(lr.TraceId, 16)
				lr.SpanId = fix(lr.SpanId, 8)
			}
		}
	}
}

func otlpToRequest(data *logspb.LogsData, cfg OTLPConfig, now int64) *Request {
	req := &Request{Format: "otlp"}
	index := make(map[string]int) // label string -> index in req.Streams
	var (
		resSM, scopeSM []model.Label
		lbls           = make(map[string]string)
		mb             metadataBuilder
	)
	for _, rl := range data.GetResourceLogs() {
		clear(lbls)
		resSM = resSM[:0]
		for _, kv := range rl.GetResource().GetAttributes() {
			action := cfg.resourceAction(kv.GetKey())
			if action == OTLPDrop {
				continue
			}
			for _, p := range attributeLabels(kv.GetKey(), kv.GetValue(), "", nil) {
				if action == OTLPIndexLabel {
					lbls[p.Name] = strings.ToValidUTF8(p.Value, "\uFFFD")
				} else {
					resSM = append(resSM, p)
				}
			}
		}
		ls := model.LabelsFromMap(lbls)
		key := ls.String()
		si := -1 // the stream is created with its first record
		for _, sl := range rl.GetScopeLogs() {
			scope := sl.GetScope()
			scopeSM = scopeSM[:0]
			for _, kv := range scope.GetAttributes() {
				if nonResourceAction(kv.GetKey(), cfg.ScopeAttributes) == OTLPDrop {
					continue
				}
				scopeSM = attributeLabels(kv.GetKey(), kv.GetValue(), "", scopeSM)
			}
			if n := scope.GetName(); n != "" {
				scopeSM = append(scopeSM, model.Label{Name: "scope_name", Value: n})
			}
			if v := scope.GetVersion(); v != "" {
				scopeSM = append(scopeSM, model.Label{Name: "scope_version", Value: v})
			}
			if d := scope.GetDroppedAttributesCount(); d != 0 {
				scopeSM = append(scopeSM, model.Label{Name: "scope_dropped_attributes_count", Value: strconv.FormatUint(uint64(d), 10)})
			}
			for _, lr := range sl.GetLogRecords() {
				if si < 0 {
					var ok bool
					if si, ok = index[key]; !ok {
						si = len(req.Streams)
						index[key] = si
						req.Streams = append(req.Streams, model.Stream{Labels: ls})
					}
				}
				st := &req.Streams[si]
				st.Entries = append(st.Entries, otlpEntry(lr, &cfg, resSM, scopeSM, now, &mb))
			}
		}
	}
	return req
}

func otlpEntry(lr *logspb.LogRecord, cfg *OTLPConfig, resSM, scopeSM []model.Label, now int64, mb *metadataBuilder) model.Entry {
	mb.reset()
	for _, kv := range lr.GetAttributes() {
		if nonResourceAction(kv.GetKey(), cfg.LogAttributes) == OTLPDrop {
			continue
		}
		for _, p := range attributeLabels(kv.GetKey(), kv.GetValue(), "", nil) {
			mb.add(p.Name, p.Value)
		}
	}
	ts, observed := lr.GetTimeUnixNano(), lr.GetObservedTimeUnixNano()
	if ts != 0 && observed != 0 {
		mb.add("observed_timestamp", strconv.FormatInt(clampNanos(observed), 10))
	}
	if sn := lr.GetSeverityNumber(); sn != logspb.SeverityNumber_SEVERITY_NUMBER_UNSPECIFIED {
		mb.add(metadataSeverityNum, strconv.Itoa(int(sn)))
	}
	if st := lr.GetSeverityText(); st != "" {
		mb.add("severity_text", st)
	}
	if d := lr.GetDroppedAttributesCount(); d != 0 {
		mb.add("dropped_attributes_count", strconv.FormatUint(uint64(d), 10))
	}
	if f := lr.GetFlags(); f != 0 {
		mb.add("flags", strconv.FormatUint(uint64(f), 10))
	}
	if id := lr.GetTraceId(); len(id) > 0 && !allZero(id) {
		mb.add("trace_id", hex.EncodeToString(id))
	}
	if id := lr.GetSpanId(); len(id) > 0 && !allZero(id) {
		mb.add("span_id", hex.EncodeToString(id))
	}
	for _, p := range resSM {
		mb.add(p.Name, p.Value)
	}
	for _, p := range scopeSM {
		mb.add(p.Name, p.Value)
	}
	e := model.Entry{Line: anyValueString(lr.GetBody()), Metadata: mb.labels()}
	switch {
	case ts != 0:
		e.Timestamp = clampNanos(ts)
	case observed != 0:
		e.Timestamp = clampNanos(observed)
	default:
		e.Timestamp = now
	}
	return e
}

func clampNanos(ns uint64) int64 {
	if ns > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(ns)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// attributeLabels appends the label pairs of one attribute to dst: its name
// sanitised, maps flattened into parent_child names.
func attributeLabels(key string, v *commonpb.AnyValue, prefix string, dst []model.Label) []model.Label {
	name := key
	if prefix != "" {
		name = prefix + "_" + key
	}
	name = sanitizeMetadataName(name)
	if kvl, ok := v.GetValue().(*commonpb.AnyValue_KvlistValue); ok {
		for _, kv := range kvl.KvlistValue.GetValues() {
			dst = attributeLabels(kv.GetKey(), kv.GetValue(), name, dst)
		}
		return dst
	}
	if name == "" {
		return dst
	}
	return append(dst, model.Label{Name: name, Value: anyValueString(v)})
}

// anyValueString renders a value as the OpenTelemetry collector's
// pcommon.Value.AsString does, which is what Loki stores: maps and arrays as
// JSON, bytes as base64, doubles as JSON numbers.
func anyValueString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case nil:
		return ""
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		f := x.DoubleValue
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return "json: unsupported value: " + strconv.FormatFloat(f, 'g', -1, 64)
		}
		b, _ := json.Marshal(f)
		return string(b)
	case *commonpb.AnyValue_BytesValue:
		return base64.StdEncoding.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue, *commonpb.AnyValue_KvlistValue:
		b, _ := json.Marshal(anyValueRaw(v))
		return string(b)
	}
	return ""
}

// anyValueRaw converts a value to plain Go values for encoding/json, as
// pcommon's AsRaw does.
func anyValueRaw(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BytesValue:
		return x.BytesValue
	case *commonpb.AnyValue_ArrayValue:
		vals := x.ArrayValue.GetValues()
		out := make([]any, len(vals))
		for i, e := range vals {
			out[i] = anyValueRaw(e)
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		kvs := x.KvlistValue.GetValues()
		out := make(map[string]any, len(kvs))
		for _, kv := range kvs {
			out[kv.GetKey()] = anyValueRaw(kv.GetValue())
		}
		return out
	}
	return nil
}

// OTLPResponse returns the body and Content-Type of the (empty)
// ExportLogsServiceResponse to send for a successful OTLP request, in the
// request's encoding.
func OTLPResponse(r *http.Request) (body []byte, contentType string) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == contentTypeJSON {
		return []byte("{}"), contentTypeJSON
	}
	return []byte{}, contentTypeProtobuf
}

package app

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/stretchr/testify/require"
)

// TestBadInput sends one request per rejection class and checks Loki's
// status and message, that valid streams of the same request were stored,
// and that the server stays up with earlier data intact.
func TestBadInput(t *testing.T) {
	dir := tempDir(t)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	overrides := filepath.Join(dir, "..", "runtime.yaml")
	require.NoError(t, os.WriteFile(overrides, []byte(`overrides:
  ratelimited:
    ingestion_rate_mb: 0.01
    ingestion_burst_size_mb: 0.01
  fewstreams:
    max_global_streams_per_user: 1
  ordered:
    unordered_writes: false
  nometa:
    allow_structured_metadata: false
  shortlines:
    max_line_size: 1KB
`), 0o644))
	s := startServer(t, dir, "-auth.enabled", "-runtime-config.file", overrides, "-server.max-push-body-size", "64KB")
	now := time.Now()
	ns := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).UnixNano(), 10) }
	canary := fmt.Sprintf(`{"streams":[{"stream":{"app":"canary"},"values":[["%s","still here"]]}]}`, ns(-time.Minute))
	require.Equal(t, http.StatusNoContent, s.do("POST", "/loki/api/v1/push", []byte(canary), "Content-Type", "application/json", "X-Scope-OrgID", "t").status)

	rawProto := func(labels string, line string) []byte {
		// A hand-encoded PushRequest with an arbitrary label string.
		var entry []byte
		entry = append(entry, 0x0a, 0x00) // timestamp {} (epoch 0)
		entry = append(entry, 0x12, byte(len(line)))
		entry = append(entry, line...)
		var stream []byte
		stream = append(stream, 0x0a, byte(len(labels)))
		stream = append(stream, labels...)
		stream = append(stream, 0x12, byte(len(entry)))
		stream = append(stream, entry...)
		req := append([]byte{0x0a, byte(len(stream))}, stream...)
		return snappy.Encode(nil, req)
	}
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		_, _ = w.Write([]byte(s))
		_ = w.Close()
		return b.Bytes()
	}
	good := fmt.Sprintf(`{"stream":{"app":"good"},"values":[["%s","kept"]]}`, ns(-time.Second))
	type tc struct {
		name     string
		tenant   string
		body     []byte
		headers  []string
		status   int
		contains string
		keptGood bool // the valid stream in the same request was stored
	}
	jsonH := []string{"Content-Type", "application/json"}
	cases := []tc{
		{"empty request", "t", []byte(`{"streams":[]}`), jsonH, 422, "error at least one valid stream is required for ingestion", false},
		{"bad label name", "t", rawProto(`{1="a"}`, "x"), nil, 400, "couldn't parse labels: 1:2: parse error: unexpected character inside braces: '1'", false},
		{"json numeric timestamp", "t", []byte(`{"streams":[{"stream":{"a":"b"},"values":[[123,"x"]]}]}`), jsonH, 400, "", false},
		{"text body as protobuf", "t", []byte("hello world"), []string{"Content-Type", "text/plain"}, 400, "snappy: corrupt input", false},
		{"unsupported encoding", "t", []byte(`{}`), []string{"Content-Type", "application/json", "Content-Encoding", "br"}, 400, `Content-Encoding "br" not supported`, false},
		{"too new", "t", []byte(fmt.Sprintf(`{"streams":[%s,{"stream":{"app":"new"},"values":[["%s","future"]]}]}`, good, ns(time.Hour))), jsonH, 400, "has timestamp too new", true},
		{"too old", "t", []byte(fmt.Sprintf(`{"streams":[%s,{"stream":{"app":"old"},"values":[["%s","ancient"]]}]}`, good, ns(-30*24*time.Hour))), jsonH, 400, "has timestamp too old", true},
		{"line too long", "shortlines", []byte(fmt.Sprintf(`{"streams":[%s,{"stream":{"app":"long"},"values":[["%s","%s"]]}]}`, good, ns(-time.Second), strings.Repeat("x", 2000))), jsonH, 400, "max entry size '1024' bytes exceeded for stream '{app=\"long\", service_name=\"long\"}' while adding an entry with length '2000' bytes", true},
		{"too many label names", "t", []byte(fmt.Sprintf(`{"streams":[%s,{"stream":{%s},"values":[["%s","x"]]}]}`, good, manyLabels(16), ns(-time.Second))), jsonH, 400, "has 16 label names; limit 15", true},
		{"label value too long", "t", []byte(fmt.Sprintf(`{"streams":[%s,{"stream":{"app":"%s"},"values":[["%s","x"]]}]}`, good, strings.Repeat("v", 2049), ns(-time.Second))), jsonH, 400, "has label value too long", true},
		{"body too large", "t", gz(strings.Repeat(" ", 200000)), []string{"Content-Type", "application/json", "Content-Encoding", "gzip"}, 413, "request body too large", false},
		{"rate limited", "ratelimited", []byte(fmt.Sprintf(`{"streams":[{"stream":{"app":"r"},"values":[["%s","%s"]]}]}`, ns(-time.Second), strings.Repeat("z", 30000))), jsonH, 429, "ingestion rate limit exceeded for user ratelimited", false},
		{"stream limit", "fewstreams", []byte(fmt.Sprintf(`{"streams":[{"stream":{"app":"one"},"values":[["%s","a"]]},{"stream":{"app":"two"},"values":[["%s","b"]]}]}`, ns(-2*time.Second), ns(-time.Second))), jsonH, 429, "maximum active stream limit exceeded", false},
		{"out of order", "ordered", []byte(fmt.Sprintf(`{"streams":[{"stream":{"app":"o"},"values":[["%s","new"],["%s","older"]]}]}`, ns(-time.Second), ns(-2*time.Second))), jsonH, 400, "entry out of order", false},
		{"too far behind", "t", []byte(fmt.Sprintf(`{"streams":[{"stream":{"app":"behind"},"values":[["%s","new"],["%s","too far behind"]]}]}`, ns(-time.Second), ns(-3*time.Hour))), jsonH, 400, "entry too far behind", false},
		{"structured metadata disallowed", "nometa", []byte(fmt.Sprintf(`{"streams":[{"stream":{"app":"m"},"values":[["%s","x",{"trace_id":"1"}]]}]}`, ns(-time.Second))), jsonH, 400, "includes structured metadata, but this feature is disallowed", false},
		{"no org id", "", []byte(canary), jsonH, 401, "no org id", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := append([]string{}, c.headers...)
			if c.tenant != "" {
				h = append(h, "X-Scope-OrgID", c.tenant)
			}
			r := s.do("POST", "/loki/api/v1/push", c.body, h...)
			require.Equal(t, c.status, r.status, "body: %s", r.body)
			if c.contains != "" {
				require.Contains(t, string(r.body), c.contains)
			}
			if r.status >= 400 {
				require.Contains(t, r.header.Get("Content-Type"), "text/plain")
			}
			if c.keptGood {
				rows, _ := s.queryRange(`{app="good"}`, now.Add(-time.Hour).UnixNano(), now.Add(time.Minute).UnixNano(), 100, "backward", "X-Scope-OrgID", c.tenant)
				require.NotEmpty(t, rows, "valid stream of a partly rejected request must be stored")
			}
		})
	}
	// Bad queries.
	qcases := []struct {
		params   url.Values
		status   int
		contains string
	}{
		{url.Values{"query": {`{app="canary"`}}, 400, "parse error at line 1, col 14: syntax error: unexpected $end, expecting } or ,"},
		{url.Values{"query": {`{app="canary"}`}, "limit": {"6000"}}, 400, "max entries limit per query exceeded, limit > max_entries_limit_per_query (6000 > 5000)"},
		{url.Values{"query": {`{app="canary"}`}, "start": {"yesterday"}}, 400, `could not parse 'start' parameter: strconv.ParseInt: parsing "yesterday": invalid syntax`},
		{url.Values{"query": {`{app="canary"}`}, "start": {"100"}, "end": {"50"}}, 400, "end timestamp must not be before or equal to start time"},
		{url.Values{"query": {`rate({app="canary"}[1m])`}, "step": {"0"}}, 400, "zero or negative query resolution step widths are not accepted"},
		{url.Values{"query": {`{app="canary"}`}, "start": {"0"}, "end": {strconv.FormatInt(int64(800*time.Hour), 10)}}, 400, "the query time range exceeds the limit (query length: 800h0m0s, limit: 30d1h)"},
	}
	for _, c := range qcases {
		r := s.get("/loki/api/v1/query_range", c.params, "X-Scope-OrgID", "t")
		require.Equal(t, c.status, r.status, "%v: %s", c.params, r.body)
		require.Contains(t, string(r.body), c.contains)
	}
	r := s.get("/loki/api/v1/query", url.Values{"query": {`{app="canary"}`}}, "X-Scope-OrgID", "t")
	require.Equal(t, 400, r.status)
	require.Contains(t, string(r.body), "log queries are not supported as an instant query type")
	require.Equal(t, http.StatusNotFound, s.get("/loki/api/v1/push", nil).status)

	// The server is up and earlier data is intact.
	rows, _ := s.queryRange(`{app="canary"}`, now.Add(-time.Hour).UnixNano(), now.UnixNano(), 10, "backward", "X-Scope-OrgID", "t")
	require.Len(t, rows, 1)
	require.Contains(t, rows[0], "still here")
}

func manyLabels(n int) string {
	var parts []string
	for i := 0; i < n; i++ {
		parts = append(parts, fmt.Sprintf(`"l%02d":"v"`, i))
	}
	return strings.Join(parts, ",")
}

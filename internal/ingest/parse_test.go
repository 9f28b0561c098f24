package ingest

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/stretchr/testify/require"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// pushServer serves Parse on loopback: it answers 204 and hands the decoded
// request to the test, or answers with the HTTPError.
func pushServer(t *testing.T, maxBody int64) (url string, got <-chan *Request) {
	t.Helper()
	ch := make(chan *Request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := Parse(r, maxBody)
		if err != nil {
			var he *HTTPError
			if !errors.As(err, &he) {
				http.Error(w, "not an HTTPError: "+err.Error(), 500)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(he.Status)
			_, _ = io.WriteString(w, he.Msg)
			return
		}
		ch <- req
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, ch
}

func post(t *testing.T, url, contentType, encoding string, body []byte) (int, string) {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	if encoding != "" {
		r.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(r)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

func deflated(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := flate.NewWriter(&buf, flate.BestSpeed)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

func TestParseFormats(t *testing.T) {
	url, got := pushServer(t, 1<<20)
	want := []model.Stream{{
		Labels:  model.LabelsFromStrings("app", "a"),
		Entries: []model.Entry{{Timestamp: 1_700_000_000_000_000_001, Line: "hello", Metadata: model.LabelsFromStrings("k", "v")}},
	}}
	jsonBody := []byte(`{"streams":[{"stream":{"app":"a"},"values":[["1700000000000000001","hello",{"k":"v"}]]}]}`)
	proto := snappy.Encode(nil, AppendProto(nil, want))
	legacy := []byte(`{"streams":[{"labels":"{app=\"a\"}","entries":[{"ts":"2023-11-14T22:13:20.000000001Z","line":"hello"}]}]}`)

	f := func(path, contentType, encoding string, body []byte, format string, want []model.Stream) {
		t.Helper()
		status, msg := post(t, url+path, contentType, encoding, body)
		require.Equal(t, http.StatusNoContent, status, msg)
		req := <-got
		require.Equal(t, format, req.Format)
		require.Equal(t, normalizeStreams(want), normalizeStreams(req.Streams))
		require.Positive(t, req.BodySize)
	}
	f("/loki/api/v1/push", "application/json", "", jsonBody, "json", want)
	f("/loki/api/v1/push", "application/json; charset=utf-8", "gzip", gzipped(jsonBody), "json", want)
	f("/loki/api/v1/push", "application/json", "deflate", deflated(jsonBody), "json", want)
	f("/loki/api/v1/push", "application/json", "snappy", snappy.Encode(nil, jsonBody), "json", want)
	f("/loki/api/v1/push", "application/x-protobuf", "", proto, "protobuf", want)
	f("/loki/api/v1/push", "application/x-protobuf", "snappy", proto, "protobuf", want)
	f("/loki/api/v1/push", "", "", proto, "protobuf", want)
	f("/loki/api/v1/push", "application/octet-stream", "gzip", gzipped(proto), "protobuf", want)
	f("/api/prom/push", "application/json", "", legacy, "legacy-json",
		[]model.Stream{{Labels: want[0].Labels, Entries: []model.Entry{{Timestamp: want[0].Entries[0].Timestamp, Line: "hello"}}}})
	f("/api/prom/push", "application/x-protobuf", "", proto, "protobuf", want)
}

func TestParseRejections(t *testing.T) {
	url, _ := pushServer(t, 1000)
	f := func(contentType, encoding string, body []byte, status int, msg string) {
		t.Helper()
		gotStatus, gotMsg := post(t, url+"/loki/api/v1/push", contentType, encoding, body)
		require.Equal(t, status, gotStatus, gotMsg)
		require.Equal(t, msg, gotMsg)
	}
	f("text/plain", "", []byte("hello, this is not snappy"), 400, "snappy: corrupt input")
	f("application/json", "br", []byte("{}"), 400, `Content-Encoding "br" not supported`)
	f("application/json", "gzip", []byte("this is not gzip data"), 400, "gzip: invalid header")
	f("a b c", "", []byte("{}"), 400, "mime: expected slash after first token")
	f("application/json", "", bytes.Repeat([]byte(" "), 1001), 413, "request body too large: 1001 bytes, limit: 1000 bytes")
	// Decompression bombs: small on the wire, large once decoded.
	big := []byte(`{"streams":[{"stream":{"a":"b"},"values":[["1","` + strings.Repeat("x", 5000) + `"]]}]}`)
	f("application/json", "gzip", gzipped(big), 413, "request body too large: 1001 bytes, limit: 1000 bytes")
	f("application/json", "deflate", deflated(big), 413, "request body too large: 1001 bytes, limit: 1000 bytes")
	f("application/json", "snappy", snappy.Encode(nil, big), 413, "request body too large: 5054 bytes, limit: 1000 bytes")
	f("application/x-protobuf", "", snappy.Encode(nil, bytes.Repeat([]byte{0}, 5000)), 413, "request body too large: 5000 bytes, limit: 1000 bytes")
	f("application/json", "", []byte(`{"streams":[{"stream":{"1a":"b"},"values":[["1","x"]]}]}`), 400,
		"couldn't parse labels: 1:2: parse error: unexpected character inside braces: '1'")
}

func TestParseBodyTooLargeWithoutContentLength(t *testing.T) {
	url, _ := pushServer(t, 10)
	r, err := http.NewRequest(http.MethodPost, url+"/loki/api/v1/push", io.NopCloser(strings.NewReader(strings.Repeat("y", 100))))
	require.NoError(t, err)
	r.ContentLength = -1 // chunked
	r.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(r)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	require.Equal(t, "request body too large: 11 bytes, limit: 10 bytes", string(b))
}

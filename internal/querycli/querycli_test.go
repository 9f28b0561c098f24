package querycli

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestOutputFormats(t *testing.T) {
	e := Entry{Timestamp: time.Unix(1700000000, 5).UTC(), Labels: map[string]string{"b": "2", "a": `q"x`}, Line: "hello"}
	f := func(format string, noLabels bool, want string) {
		t.Helper()
		var buf bytes.Buffer
		o, err := NewOutput(&buf, format, time.UTC, noLabels)
		require.NoError(t, err)
		require.NoError(t, o.Entry(e))
		require.NoError(t, o.Flush())
		require.Equal(t, want, buf.String())
	}
	f("", false, `2023-11-14T22:13:20.000000005Z {a="q\"x", b="2"} hello`+"\n")
	f(FormatDefault, true, "2023-11-14T22:13:20.000000005Z hello\n")
	f(FormatRaw, false, "hello\n")
	f(FormatJSONL, false, `{"labels":{"a":"q\"x","b":"2"},"line":"hello","timestamp":"2023-11-14T22:13:20.000000005Z"}`+"\n")
	_, err := NewOutput(&bytes.Buffer{}, "csv", nil, false)
	require.Error(t, err)
}

func TestErrorMessage(t *testing.T) {
	require.Equal(t, "parse error", errorMessage([]byte("parse error")))
	require.Equal(t, "bad", errorMessage([]byte(`{"message":"bad"}`)))
	require.Equal(t, "worse", errorMessage([]byte(`{"status":"error","error":"worse"}`)))
	e := &APIError{Path: "/x", StatusCode: 400, Status: "400 Bad Request", Message: "oops\n"}
	require.Equal(t, "/x: server answered 400 Bad Request: oops", e.Error())
}

func TestSortEntries(t *testing.T) {
	ts := func(n int64) time.Time { return time.Unix(0, n) }
	es := []Entry{
		{Timestamp: ts(1), Labels: map[string]string{"a": "2"}, Line: "x"},
		{Timestamp: ts(2), Labels: map[string]string{"a": "1"}, Line: "y"},
		{Timestamp: ts(1), Labels: map[string]string{"a": "1"}, Line: "z"},
		{Timestamp: ts(1), Labels: map[string]string{"a": "1"}, Line: "w"},
	}
	SortEntries(es, Forward)
	var got []string
	for _, e := range es {
		got = append(got, e.Line)
	}
	require.Equal(t, []string{"w", "z", "x", "y"}, got)
	SortEntries(es, Backward)
	got = got[:0]
	for _, e := range es {
		got = append(got, e.Line)
	}
	require.Equal(t, []string{"y", "w", "z", "x"}, got)
}

func TestDecodeTailFrame(t *testing.T) {
	f, err := decodeTailFrame([]byte(`{"streams":[{"stream":{"a":"1"},"values":[["20","b"],["10","a"]]},{"stream":{"a":"2"},"values":[["15","c"]]}],"dropped_entries":[{"labels":{"a":"3"},"timestamp":"7"}]}`))
	require.NoError(t, err)
	var lines []string
	for _, e := range f.Entries {
		lines = append(lines, e.Line)
	}
	require.Equal(t, []string{"a", "c", "b"}, lines, "frames are put in time order")
	require.Equal(t, []Dropped{{Labels: map[string]string{"a": "3"}, Timestamp: time.Unix(0, 7).UTC()}}, f.Dropped)
	_, err = decodeTailFrame([]byte(`{"streams":[{"stream":{},"values":[["x","y"]]}]}`))
	require.Error(t, err)
}

func FuzzDecodeTailFrame(f *testing.F) {
	f.Add([]byte(`{"streams":[{"stream":{"a":"1"},"values":[["20","b"]]}]}`))
	f.Add([]byte(`{"streams":[{"stream":{"a":"1"},"values":[["20","b",{"structuredMetadata":{"t":"1"}}]]}],"dropped_entries":[{"labels":{},"timestamp":"1"}]}`))
	f.Add([]byte(`{"streams":null}`))
	f.Add([]byte(`{"streams":[{"values":[[]]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeTailFrame(b)
		if err != nil {
			return
		}
		for i := 1; i < len(fr.Entries); i++ {
			if fr.Entries[i].Timestamp.Before(fr.Entries[i-1].Timestamp) {
				t.Fatalf("entries out of order")
			}
		}
	})
}

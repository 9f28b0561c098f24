package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

func TestDecodeJSON(t *testing.T) {
	f := func(body string, want []model.Stream) {
		t.Helper()
		req, err := DecodeJSON([]byte(body))
		require.NoError(t, err)
		require.Equal(t, normalizeStreams(want), normalizeStreams(req.Streams))
	}
	f(`{"streams":[{"stream":{"app":"a"},"values":[["1","hi"]]}]}`,
		[]model.Stream{{Labels: model.LabelsFromStrings("app", "a"), Entries: []model.Entry{{Timestamp: 1, Line: "hi"}}}})
	// Keys in any order, unknown keys skipped, whitespace everywhere.
	f(" {\n \"x\": [1, {\"y\": null}, true, -1.5e3], \"streams\" : [ { \"values\" : [ [ \"1700000000000000000\" , \"l\" , { \"trace_id\" : \"t\" , \"a\" : \"b\" } ] ] , \"stream\" : { \"b\" : \"2\" , \"a\" : \"1\" } } ] } ",
		[]model.Stream{{Labels: model.LabelsFromStrings("a", "1", "b", "2"), Entries: []model.Entry{
			{Timestamp: 1700000000000000000, Line: "l", Metadata: model.LabelsFromStrings("a", "b", "trace_id", "t")},
		}}})
	// Escapes, including a surrogate pair and a lone surrogate.
	f(`{"streams":[{"stream":{"app":"a\"b"},"values":[["2","{\"msg\":\"x\\ny\"} \u00e9 \ud83d\ude00 \ud800 \/"]]}]}`,
		[]model.Stream{{Labels: model.LabelsFromStrings("app", `a"b`), Entries: []model.Entry{{Timestamp: 2, Line: "{\"msg\":\"x\\ny\"} é 😀 \uFFFD /"}}}})
	// null line, empty stream labels, a key repeated in metadata keeps the last value.
	f(`{"streams":[{"stream":{},"values":[["3",null,{"k":"1","k":"2"}]]},{"stream":null,"values":null}]}`,
		[]model.Stream{{Labels: model.EmptyLabels(), Entries: []model.Entry{{Timestamp: 3, Line: "", Metadata: model.LabelsFromStrings("k", "2")}}}, {Labels: model.EmptyLabels()}})
	f(`{"streams":[]}`, nil)
	f(`{}`, nil)
	f(`{"STREAMS":[{"Stream":{"a":"b"},"Values":[["4","x"]]}]}`,
		[]model.Stream{{Labels: model.LabelsFromStrings("a", "b"), Entries: []model.Entry{{Timestamp: 4, Line: "x"}}}})
}

func TestDecodeJSONErrors(t *testing.T) {
	f := func(body, contains string) {
		t.Helper()
		_, err := DecodeJSON([]byte(body))
		var he *HTTPError
		require.True(t, errors.As(err, &he), "body %s: err %v", body, err)
		require.Equal(t, http.StatusBadRequest, he.Status)
		require.Contains(t, he.Msg, contains)
	}
	f(`{"streams":[{"stream":{"a":"b"},"values":[[1795000000000000000,"x"]]}]}`, `ReadString: expects " or n, but found 1`)
	f(`{"streams":[{"stream":{"a":"b"},"values":[["x","x"]]}]}`, `error reading entry timestamp: strconv.ParseInt: parsing "x": invalid syntax`)
	f(`{"streams":[{"stream":{"a":"b"},"values":[["1","x",{},"y"]]}]}`, `array must contains 2 values`)
	f(`{"streams":[{"stream":{"a":"b"},"values":[["1","x",{"k":1}]]}]}`, `ReadString: expects " or n, but found 1`)
	f(`{"streams":[{"stream":{"a":1}}]}`, `ReadString`)
	f(`{"streams":[{"stream":{"a":"b"}`, `expect`)
	f("{\"streams\":[{\"stream\":{\"a\":\"b\x01\"}}]}", `invalid control character`)
	f(`{"streams":[{"stream":{"a":"\q"}}]}`, `invalid escape char`)
	f(`{"streams":[{"stream":{"1a":"b"},"values":[["1","x"]]}]}`, `couldn't parse labels: 1:2: parse error: unexpected character inside braces: '1'`)
	f(`[`, `expect { or n`)
	f(``, `expect { or n`)
}

func TestDecodeLegacyJSON(t *testing.T) {
	req, err := DecodeLegacyJSON([]byte(`{"streams":[{"labels":"{app=\"a\"}","entries":[{"ts":"2024-01-02T03:04:05.000000006Z","line":"hello"}]}]}`))
	require.NoError(t, err)
	require.Equal(t, []model.Stream{{Labels: model.LabelsFromStrings("app", "a"), Entries: []model.Entry{{Timestamp: 1704164645000000006, Line: "hello"}}}}, req.Streams)

	_, err = DecodeLegacyJSON([]byte(`{"streams":[{"labels":"{app=}","entries":[]}]}`))
	requireHTTPError(t, err, http.StatusBadRequest, "")
	_, err = DecodeLegacyJSON([]byte(`{"streams":[{"labels":"{a=\"1\"}","entries":[{"ts":"yesterday","line":"x"}]}]}`))
	requireHTTPError(t, err, http.StatusBadRequest, "")
}

// encodeJSON writes streams as a v1 push body with encoding/json, the oracle
// for the hand-written decoder.
func encodeJSON(streams []model.Stream) []byte {
	type js struct {
		Stream map[string]string `json:"stream"`
		Values [][]any           `json:"values"`
	}
	var body struct {
		Streams []js `json:"streams"`
	}
	for _, s := range streams {
		o := js{Stream: s.Labels.Map()}
		for _, e := range s.Entries {
			v := []any{strconv.FormatInt(e.Timestamp, 10), e.Line}
			if !e.Metadata.IsEmpty() {
				v = append(v, e.Metadata.Map())
			}
			o.Values = append(o.Values, v)
		}
		body.Streams = append(body.Streams, o)
	}
	b, _ := json.Marshal(body)
	return b
}

func TestDecodeJSONMatchesEncodingJSON(t *testing.T) {
	var streams []model.Stream
	for i := range 5 {
		s := model.Stream{Labels: model.LabelsFromStrings("app", fmt.Sprintf("svc-%d", i), "env", "prod")}
		for j := range 20 {
			e := model.Entry{Timestamp: int64(i*1000 + j), Line: fmt.Sprintf(`{"level":"info","msg":"req %d <&> \"q\"","path":"/a\\b","t":"\t"}`, j)}
			if j%3 == 0 {
				e.Metadata = model.LabelsFromStrings("trace_id", strings.Repeat("ab", 8), "user", "ü")
			}
			s.Entries = append(s.Entries, e)
		}
		streams = append(streams, s)
	}
	req, err := DecodeJSON(encodeJSON(streams))
	require.NoError(t, err)
	require.Equal(t, normalizeStreams(streams), normalizeStreams(req.Streams))
}

func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"streams":[{"stream":{"app":"a"},"values":[["1","hi"],["2","x",{"k":"v"}]]}]}`))
	f.Add([]byte(`{"streams":[{"stream":{"app":"a\u00e9\ud83d\ude00"},"values":[["1","\"\\\/\b\f\n\r\t"]]}]}`))
	f.Add([]byte(`{"streams":[{"stream":{},"values":[[1,"x"]]}]}`))
	f.Add([]byte(`{"x":[{"y":[true,false,null,-1.5e3]}],"streams":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeJSON(append([]byte(nil), body...))
		if err != nil {
			var he *HTTPError
			require.True(t, errors.As(err, &he))
			return
		}
		// Accepted input re-encodes (with encoding/json) to an equal request.
		again, err := DecodeJSON(encodeJSON(req.Streams))
		require.NoError(t, err)
		require.Equal(t, normalizeStreams(dropEmpty(req.Streams)), normalizeStreams(dropEmpty(again.Streams)))
	})
}

// dropEmpty removes streams without entries, which encodeJSON writes with
// null values, and normalises invalid UTF-8, which encoding/json replaces.
func dropEmpty(ss []model.Stream) []model.Stream {
	var out []model.Stream
	for _, s := range ss {
		if len(s.Entries) == 0 {
			continue
		}
		for i := range s.Entries {
			s.Entries[i].Line = strings.ToValidUTF8(s.Entries[i].Line, "\uFFFD")
			if !s.Entries[i].Metadata.IsEmpty() {
				m := map[string]string{}
				s.Entries[i].Metadata.Range(func(l model.Label) {
					m[strings.ToValidUTF8(l.Name, "\uFFFD")] = strings.ToValidUTF8(l.Value, "\uFFFD")
				})
				s.Entries[i].Metadata = model.LabelsFromMap(m)
			}
		}
		b := model.NewLabelsBuilder(model.EmptyLabels())
		s.Labels.Range(func(l model.Label) { b.Set(l.Name, strings.ToValidUTF8(l.Value, "\uFFFD")) })
		s.Labels = b.Labels()
		out = append(out, s)
	}
	return out
}

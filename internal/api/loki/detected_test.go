package loki

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ledgerlog/ledgerlog/internal/logql/engine"
	"github.com/ledgerlog/ledgerlog/internal/model"
)

func TestValueType(t *testing.T) {
	f := func(v, want string) {
		t.Helper()
		require.Equal(t, want, valueType(v), v)
	}
	f("42", fieldInt)
	f("-7", fieldInt)
	f("4.2", fieldFloat)
	f("1e3", fieldFloat)
	f("true", fieldBoolean)
	f("FALSE", fieldBoolean)
	f("250ms", fieldDuration)
	f("1h30m", fieldDuration)
	f("10KB", fieldBytes)
	f("1.5 MiB", fieldBytes)
	f("512B", fieldBytes)
	f("info", fieldString)
	f("", fieldString)
	f("10 apples", fieldString)
}

func TestFieldType(t *testing.T) {
	require.Equal(t, fieldInt, fieldType(map[string]int{fieldInt: 3}))
	require.Equal(t, fieldFloat, fieldType(map[string]int{fieldInt: 3, fieldFloat: 1}))
	require.Equal(t, fieldString, fieldType(map[string]int{fieldInt: 3, fieldDuration: 1}))
}

func TestWalkJSON(t *testing.T) {
	f := func(line string, ok bool, want ...string) {
		t.Helper()
		var got []string
		res := walkJSON([]byte(line), func(path []string, v string) {
			got = append(got, strings.Join(path, ".")+"="+v)
		})
		require.Equal(t, ok, res, line)
		if ok {
			require.Equal(t, want, got)
		}
	}
	f(`{"a":"x","b":{"c":1.5,"d":[1,2,{"e":3}],"f":null,"g":true}}`, true, "a=x", "b.c=1.5", "b.g=true")
	f(`{}`, true)
	f(`{"a":1} trailing`, false)
	f(`[1,2]`, false)
	f(`level=info`, false)
	f(`{"a":`, false)
}

func TestFieldDetector(t *testing.T) {
	fd, err := newFieldDetector()
	require.NoError(t, err)
	stream := model.LabelsFromStrings("app", "pay", "level", "info")
	add := func(line string, md ...string) {
		e := &engine.Entry{Line: line, Metadata: model.LabelsFromStrings(md...)}
		fd.observe(stream, e)
	}
	add(`{"level":"warn","http":{"status":200,"took":"15ms"},"user-id":"u1"}`, "trace_id", "abc")
	add(`{"level":"error","http":{"status":503,"took":"1.5s"},"user-id":"u2"}`, "trace_id", "def")
	add(`ts=2026-01-01T00:00:00Z msg="paid" amount=10.5 size=10KB`)
	add(`ts=2026-01-01T00:00:01Z msg="refund" amount=3 size=2MiB`)
	type got struct {
		typ     string
		card    int
		parsers []string
		path    []string
	}
	res := map[string]got{}
	for n, f := range fd.fields {
		var ps []string
		for p := range f.parsers {
			ps = append(ps, p)
		}
		sort.Strings(ps)
		res[n] = got{fieldType(f.types), len(f.values), ps, f.jsonPath}
	}
	require.Equal(t, map[string]got{
		"level_extracted": {fieldString, 2, []string{"json"}, []string{"level"}},
		"http_status":     {fieldInt, 2, []string{"json"}, []string{"http", "status"}},
		"http_took":       {fieldDuration, 2, []string{"json"}, []string{"http", "took"}},
		"user_id":         {fieldString, 2, []string{"json"}, []string{"user-id"}},
		"trace_id":        {fieldString, 2, nil, nil},
		"ts":              {fieldString, 2, []string{"logfmt"}, nil},
		"msg":             {fieldString, 2, []string{"logfmt"}, nil},
		"amount":          {fieldFloat, 2, []string{"logfmt"}, nil},
		"size":            {fieldBytes, 2, []string{"logfmt"}, nil},
	}, res)
}

func FuzzWalkJSON(f *testing.F) {
	for _, s := range []string{`{"a":{"b":[1,{"c":2}]},"d":"x"}`, `{}`, `{"a":`, `[]`, `{"a":1}{}`, `{"\u00e9":"\ud800"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		n := 0
		ok := walkJSON([]byte(line), func(path []string, v string) {
			n++
			if len(path) == 0 {
				t.Fatalf("empty path for %q", v)
			}
		})
		var obj map[string]any
		valid := json.Unmarshal([]byte(line), &obj) == nil && obj != nil
		if ok != valid {
			t.Fatalf("walkJSON=%v, encoding/json object=%v for %q", ok, valid, line)
		}
	})
}

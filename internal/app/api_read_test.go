package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
)

// rdPush pushes one stream whose values may carry structured metadata
// (a third element).
func rdPush(t *testing.T, s *testServer, labels map[string]string, values [][]any, headers ...string) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"streams": []any{map[string]any{"stream": labels, "values": values}}})
	require.NoError(t, err)
	r := s.do(http.MethodPost, "/loki/api/v1/push", body, append([]string{"Content-Type", "application/json"}, headers...)...)
	require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
}

func rdValue(ts int64, line string, md ...string) []any {
	v := []any{strconv.FormatInt(ts, 10), line}
	if len(md) > 0 {
		m := map[string]string{}
		for i := 0; i+1 < len(md); i += 2 {
			m[md[i]] = md[i+1]
		}
		v = append(v, m)
	}
	return v
}

// rdGetJSON GETs path and decodes a 200 answer.
func rdGetJSON(t *testing.T, s *testServer, path string, params url.Values, out any, headers ...string) {
	t.Helper()
	r := s.get(path, params, headers...)
	require.Equal(t, http.StatusOK, r.status, "%s: %s", path, r.body)
	require.Contains(t, r.header.Get("Content-Type"), "application/json")
	require.NoError(t, json.Unmarshal(r.body, out), "%s", r.body)
}

func rdNS(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) }

type rdVector struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
			Values [][]any           `json:"values"`
		} `json:"result"`
	} `json:"data"`
}

// bytesBy returns metric string → bytes of a vector answer.
func (v *rdVector) bytesBy(t *testing.T) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, r := range v.Data.Result {
		require.Len(t, r.Value, 2)
		n, err := strconv.ParseInt(r.Value[1].(string), 10, 64)
		require.NoError(t, err)
		out[fmt.Sprint(r.Metric)] = n
	}
	return out
}

func TestVolumeAPI(t *testing.T) {
	s := startServer(t, tempDir(t))
	base := time.Now().Add(-30 * time.Minute).Truncate(time.Minute)
	want := map[string]int64{}
	wantEnv := map[string]int64{}
	push := func(app, env string, n, size int) {
		var vals [][]any
		for i := 0; i < n; i++ {
			line := fmt.Sprintf("%s-%s-%04d-", app, env, i) + strings.Repeat("x", size)
			vals = append(vals, rdValue(base.Add(time.Duration(i)*time.Second).UnixNano(), line))
			// Bytes count the line and its structured metadata, here the
			// detected_level="unknown" the server adds.
			n := int64(len(line) + len("detected_level") + len("unknown"))
			want[app] += n
			wantEnv[env] += n
		}
		rdPush(t, s, map[string]string{"app": app, "env": env}, vals)
	}
	push("a", "prod", 300, 100)
	push("a", "dev", 200, 10)
	push("b", "dev", 100, 50)
	start, end := base.Add(-time.Minute), base.Add(10*time.Minute)

	check := func() {
		t.Helper()
		p := url.Values{"query": {`{app=~".+"}`}, "start": {rdNS(start)}, "end": {rdNS(end)}}
		var v rdVector
		get := func(path string) {
			t.Helper()
			v = rdVector{} // json merges into existing maps
			rdGetJSON(t, s, path, p, &v)
		}
		get("/loki/api/v1/index/volume")
		require.Equal(t, "success", v.Status)
		require.Equal(t, "vector", v.Data.ResultType)
		require.Equal(t, map[string]int64{"map[app:a]": want["a"], "map[app:b]": want["b"]}, v.bytesBy(t))
		require.Equal(t, float64(end.UnixMilli())/1000, v.Data.Result[0].Value[0])
		require.Equal(t, "a", v.Data.Result[0].Metric["app"], "largest first")

		// The same through a POST form.
		r := s.do(http.MethodPost, "/loki/api/v1/index/volume", []byte(p.Encode()), "Content-Type", "application/x-www-form-urlencoded")
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		var vp rdVector
		require.NoError(t, json.Unmarshal(r.body, &vp))
		require.Equal(t, v, vp)

		p.Set("targetLabels", "env")
		get("/loki/api/v1/index/volume")
		require.Equal(t, map[string]int64{"map[env:dev]": wantEnv["dev"], "map[env:prod]": wantEnv["prod"]}, v.bytesBy(t))

		p.Del("targetLabels")
		p.Set("aggregateBy", "labels")
		get("/loki/api/v1/index/volume")
		total := want["a"] + want["b"]
		got := v.bytesBy(t)
		require.Equal(t, total, got["map[app:]"])
		require.Equal(t, total, got["map[env:]"])

		p.Del("aggregateBy")
		p.Set("limit", "1")
		get("/loki/api/v1/index/volume")
		require.Equal(t, map[string]int64{"map[app:a]": want["a"]}, v.bytesBy(t))

		// Matches index/stats, which counts whole chunks, over a range
		// holding every chunk.
		var st struct{ Bytes int64 }
		rdGetJSON(t, s, "/loki/api/v1/index/stats", url.Values{"query": {`{app=~".+"}`}, "start": {rdNS(start)}, "end": {rdNS(end)}}, &st)
		require.Equal(t, total, st.Bytes)

		// volume_range: points at start+k*step hold (t-step, t]; they add
		// up to the total.
		step := time.Minute
		p = url.Values{"query": {`{app="a"}`}, "start": {rdNS(start)}, "end": {rdNS(end)}, "step": {"60000ms"}}
		get("/loki/api/v1/index/volume_range")
		require.Equal(t, "matrix", v.Data.ResultType)
		require.Len(t, v.Data.Result, 1)
		var sum int64
		for _, pt := range v.Data.Result[0].Values {
			ms := int64(pt[0].(float64) * 1000)
			require.Zero(t, (ms-start.UnixMilli())%step.Milliseconds(), "point %v", pt[0])
			n, err := strconv.ParseInt(pt[1].(string), 10, 64)
			require.NoError(t, err)
			sum += n
		}
		require.Equal(t, want["a"], sum)
		// Data at base..base+299 s, points at base-60 s + k*60 s: k = 1..6.
		require.Len(t, v.Data.Result[0].Values, 6)
	}
	check()
	// The same figures once the head is flushed into blocks.
	require.Equal(t, http.StatusNoContent, s.do(http.MethodPost, "/flush", nil).status)
	check()

	r := s.get("/loki/api/v1/index/volume", url.Values{"query": {`{app=`}})
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Contains(t, r.header.Get("Content-Type"), "text/plain")
	r = s.get("/loki/api/v1/index/volume", url.Values{"query": {`{app="a"}`}, "aggregateBy": {"pods"}})
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Contains(t, string(r.body), "invalid aggregation option")
}

func TestDetectedAPI(t *testing.T) {
	s := startServer(t, tempDir(t))
	base := time.Now().Add(-20 * time.Minute)
	var vals [][]any
	for i := 0; i < 40; i++ {
		ts := base.Add(time.Duration(i) * time.Second).UnixNano()
		if i%2 == 0 {
			vals = append(vals, rdValue(ts, fmt.Sprintf(`{"msg":"paid","http":{"status":%d,"took":"%dms"},"ok":true}`, 200+i%3, i), "trace_id", fmt.Sprintf("t%d", i%5)))
		} else {
			vals = append(vals, rdValue(ts, fmt.Sprintf(`level=info amount=%d.5 size=%dKB msg="refund %d"`, i, i, i%4)))
		}
	}
	rdPush(t, s, map[string]string{"app": "pay", "pod": "p1", "cluster": "c1"}, vals)
	rdPush(t, s, map[string]string{"app": "web", "pod": "p2", "cluster": "c1"}, [][]any{rdValue(base.UnixNano(), "hello")})
	start, end := rdNS(base.Add(-time.Minute)), rdNS(base.Add(time.Hour))

	var dl struct {
		DetectedLabels []struct {
			Label       string `json:"label"`
			Cardinality int    `json:"cardinality"`
		} `json:"detectedLabels"`
	}
	rdGetJSON(t, s, "/loki/api/v1/detected_labels", url.Values{"query": {`{cluster="c1"}`}, "start": {start}, "end": {end}}, &dl)
	got := map[string]int{}
	for _, l := range dl.DetectedLabels {
		got[l.Label] = l.Cardinality
	}
	// cluster and pod are always offered; app and service_name have 2
	// values.
	require.Equal(t, map[string]int{"app": 2, "cluster": 1, "pod": 2, "service_name": 2}, got)

	type fieldJSON struct {
		Label       string   `json:"label"`
		Type        string   `json:"type"`
		Cardinality int      `json:"cardinality"`
		Parsers     []string `json:"parsers"`
		JSONPath    []string `json:"jsonPath"`
	}
	var df struct {
		Fields []fieldJSON `json:"fields"`
		Limit  int         `json:"limit"`
	}
	rdGetJSON(t, s, "/loki/api/v1/detected_fields", url.Values{"query": {`{app="pay"}`}, "start": {start}, "end": {end}}, &df)
	require.Equal(t, 1000, df.Limit)
	fields := map[string]fieldJSON{}
	for _, f := range df.Fields {
		fields[f.Label] = f
	}
	require.Equal(t, fieldJSON{Label: "http_status", Type: "int", Cardinality: 3, Parsers: []string{"json"}, JSONPath: []string{"http", "status"}}, fields["http_status"])
	require.Equal(t, fieldJSON{Label: "http_took", Type: "duration", Cardinality: 20, Parsers: []string{"json"}, JSONPath: []string{"http", "took"}}, fields["http_took"])
	require.Equal(t, fieldJSON{Label: "ok", Type: "boolean", Cardinality: 1, Parsers: []string{"json"}, JSONPath: []string{"ok"}}, fields["ok"])
	require.Equal(t, fieldJSON{Label: "amount", Type: "float", Cardinality: 20, Parsers: []string{"logfmt"}}, fields["amount"])
	require.Equal(t, fieldJSON{Label: "size", Type: "bytes", Cardinality: 20, Parsers: []string{"logfmt"}}, fields["size"])
	require.Equal(t, fieldJSON{Label: "msg", Type: "string", Cardinality: 3, Parsers: []string{"json", "logfmt"}, JSONPath: []string{"msg"}}, fields["msg"])
	require.Equal(t, "trace_id", fields["trace_id"].Label)
	require.Nil(t, fields["trace_id"].Parsers, "structured metadata has parsers null")
	require.Equal(t, 5, fields["trace_id"].Cardinality)
	// A query with its own parser and a filter on a parsed field.
	rdGetJSON(t, s, "/loki/api/v1/detected_fields", url.Values{"query": {`{app="pay"} | json | http_status >= 201`}, "start": {start}, "end": {end}}, &df)
	fields = map[string]fieldJSON{}
	for _, f := range df.Fields {
		fields[f.Label] = f
	}
	require.Equal(t, []string{"json"}, fields["http_status"].Parsers)
	require.Equal(t, 2, fields["http_status"].Cardinality, "only 201 and 202 pass the filter")
	require.NotContains(t, fields, "amount", "logfmt lines fail the filter")
	// parsers: null is on the wire.
	r := s.get("/loki/api/v1/detected_fields", url.Values{"query": {`{app="pay"}`}, "start": {start}, "end": {end}})
	require.Contains(t, string(r.body), `{"label":"trace_id","type":"string","cardinality":5,"parsers":null}`)

	// line_limit samples the newest lines only.
	rdGetJSON(t, s, "/loki/api/v1/detected_fields", url.Values{"query": {`{app="pay"}`}, "start": {start}, "end": {end}, "line_limit": {"4"}}, &df)
	fields = map[string]fieldJSON{}
	for _, f := range df.Fields {
		fields[f.Label] = f
	}
	require.Equal(t, 2, fields["amount"].Cardinality)
	rdGetJSON(t, s, "/loki/api/v1/detected_fields", url.Values{"query": {`{app="pay"}`}, "start": {start}, "end": {end}, "limit": {"2"}}, &df)
	require.Len(t, df.Fields, 2)
	require.Equal(t, 2, df.Limit)

	var dv struct {
		Values []string `json:"values"`
		Limit  int      `json:"limit"`
	}
	rdGetJSON(t, s, "/loki/api/v1/detected_field/http_status/values", url.Values{"query": {`{app="pay"}`}, "start": {start}, "end": {end}}, &dv)
	require.Equal(t, []string{"200", "201", "202"}, dv.Values)
	require.Equal(t, 1000, dv.Limit)
	rdGetJSON(t, s, "/loki/api/v1/detected_field/trace_id/values", url.Values{"query": {`{app="pay"}`}, "start": {start}, "end": {end}, "limit": {"2"}}, &dv)
	require.Equal(t, []string{"t0", "t1"}, dv.Values)
	rdGetJSON(t, s, "/loki/api/v1/detected_field/pod/values", url.Values{"query": {`{cluster="c1"}`}, "start": {start}, "end": {end}}, &dv)
	require.Equal(t, []string{"p1", "p2"}, dv.Values, "stream labels as a fallback")

	r = s.get("/loki/api/v1/detected_fields", url.Values{"start": {start}})
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Equal(t, "query parameter is required", string(r.body))
}

func TestPatternsAPI(t *testing.T) {
	s := startServer(t, tempDir(t))
	base := time.Now().Add(-20 * time.Minute).Truncate(time.Minute)
	var vals [][]any
	for i := 0; i < 120; i++ {
		ts := base.Add(time.Duration(i) * time.Second).UnixNano()
		if i%3 == 0 {
			vals = append(vals, rdValue(ts, fmt.Sprintf("payment %d declined for account %x", i, i*7919), "detected_level", "warn"))
		} else {
			vals = append(vals, rdValue(ts, fmt.Sprintf("GET /api/orders/%d 200 %dms", i, i%17), "detected_level", "info"))
		}
	}
	rdPush(t, s, map[string]string{"app": "shop"}, vals)
	var res struct {
		Status string `json:"status"`
		Data   []struct {
			Pattern string      `json:"pattern"`
			Level   string      `json:"level"`
			Samples [][]float64 `json:"samples"`
		} `json:"data"`
	}
	rdGetJSON(t, s, "/loki/api/v1/patterns", url.Values{
		"query": {`{app="shop"}`}, "start": {rdNS(base)}, "end": {rdNS(base.Add(10 * time.Minute))}, "step": {"60s"},
	}, &res)
	require.Equal(t, "success", res.Status)
	require.Len(t, res.Data, 2, "%+v", res.Data)
	require.Equal(t, "GET <_> 200 <_>", res.Data[0].Pattern)
	require.Equal(t, "info", res.Data[0].Level)
	require.Equal(t, "payment <_> declined for account <_>", res.Data[1].Pattern)
	require.Equal(t, "warn", res.Data[1].Level)
	for i, want := range []float64{80, 40} {
		var sum float64
		for j, sm := range res.Data[i].Samples {
			require.Len(t, sm, 2)
			require.Equal(t, float64(base.Unix()+int64(j)*60), sm[0], "samples per 60 s step")
			sum += sm[1]
		}
		require.Equal(t, want, sum)
		require.Len(t, res.Data[i].Samples, 2)
	}
	// Each pattern selects exactly its lines as a `|>` filter.
	rows, _ := s.queryRange(`{app="shop"} |> "payment <_> declined for account <_>"`, base.UnixNano(), base.Add(time.Hour).UnixNano(), 1000, "forward")
	require.Len(t, rows, 40)

	// No lines, no patterns.
	rdGetJSON(t, s, "/loki/api/v1/patterns", url.Values{"query": {`{app="none"}`}}, &res)
	require.Empty(t, res.Data)
	require.Contains(t, string(s.get("/loki/api/v1/patterns", url.Values{"query": {`{app="none"}`}}).body), `"data":[]`)
}

func TestLimitsFormatLegacyAPI(t *testing.T) {
	s := startServer(t, tempDir(t))
	var dl struct {
		Limits                 map[string]any `json:"limits"`
		PatternIngesterEnabled bool           `json:"pattern_ingester_enabled"`
		Version                string         `json:"version"`
	}
	rdGetJSON(t, s, "/loki/api/v1/drilldown-limits", nil, &dl)
	require.True(t, dl.PatternIngesterEnabled)
	require.Equal(t, Version, dl.Version)
	require.Equal(t, true, dl.Limits["volume_enabled"])
	require.Equal(t, float64(5000), dl.Limits["max_entries_limit_per_query"])
	require.Equal(t, "30d1h", dl.Limits["max_query_length"])
	require.Equal(t, true, dl.Limits["discover_log_levels"])
	require.Contains(t, dl.Limits["discover_service_name"], "service")

	r := s.get("/config/tenant/v1/limits", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, string(r.body), "max_entries_limit_per_query: 5000\n")
	require.Contains(t, string(r.body), "ingestion_rate_mb: 4\n")

	var fq struct {
		Status string `json:"status"`
		Data   string `json:"data"`
	}
	rdGetJSON(t, s, "/loki/api/v1/format_query", url.Values{"query": {`{app="a"}|="x"`}}, &fq)
	require.Equal(t, `{app="a"} |= "x"`, fq.Data)
	r = s.do(http.MethodPost, "/loki/api/v1/format_query", []byte(url.Values{"query": {`{}`}}.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	r = s.get("/loki/api/v1/format_query", url.Values{"query": {`{app="a"`}})
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Contains(t, string(r.body), "parse error")

	now := time.Now().Add(-time.Minute)
	rdPush(t, s, map[string]string{"app": "old"}, [][]any{rdValue(now.UnixNano(), "one"), rdValue(now.UnixNano()+1, "two")})
	var legacy struct {
		Streams []struct {
			Labels  string `json:"labels"`
			Entries []struct {
				TS   string `json:"ts"`
				Line string `json:"line"`
			} `json:"entries"`
		} `json:"streams"`
	}
	rdGetJSON(t, s, "/api/prom/query", url.Values{"query": {`{app="old"}`}, "limit": {"10"}, "regexp": {"tw."}}, &legacy)
	require.Len(t, legacy.Streams, 1)
	// Structured metadata is folded into the labels, as Loki does there.
	require.Equal(t, `{app="old", detected_level="unknown", service_name="old"}`, legacy.Streams[0].Labels)
	require.Len(t, legacy.Streams[0].Entries, 1)
	require.Equal(t, "two", legacy.Streams[0].Entries[0].Line)
	require.Equal(t, time.Unix(0, now.UnixNano()+1).UTC().Format(time.RFC3339Nano), legacy.Streams[0].Entries[0].TS)
}

type tailFrameJSON struct {
	Streams []struct {
		Stream map[string]string `json:"stream"`
		Values [][]string        `json:"values"`
	} `json:"streams"`
	DroppedEntries []any `json:"dropped_entries"`
}

// readTail reads frames until want lines arrived (or the deadline) and
// returns the lines in arrival order.
func readTail(t *testing.T, c *websocket.Conn, want int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var lines []string
	for len(lines) < want {
		_, b, err := c.Read(ctx)
		require.NoError(t, err, "after %d lines: %v", len(lines), lines)
		var f tailFrameJSON
		require.NoError(t, json.Unmarshal(b, &f), "%s", b)
		require.NotContains(t, string(b), "dropped_entries")
		// A frame groups entries by stream: order them by time.
		type tl struct{ ts, line string }
		var frame []tl
		for _, st := range f.Streams {
			for _, v := range st.Values {
				frame = append(frame, tl{v[0], st.Stream["app"] + ":" + v[1]})
			}
		}
		sort.SliceStable(frame, func(i, j int) bool {
			if len(frame[i].ts) != len(frame[j].ts) {
				return len(frame[i].ts) < len(frame[j].ts)
			}
			return frame[i].ts < frame[j].ts
		})
		for _, x := range frame {
			lines = append(lines, x.line)
		}
	}
	return lines
}

func TestTailWebSocket(t *testing.T) {
	s := startServer(t, tempDir(t), "-auth.enabled")
	wsURL := "ws" + strings.TrimPrefix(s.url, "http")
	hist := time.Now().Add(-10 * time.Minute)
	for i := 0; i < 5; i++ {
		rdPush(t, s, map[string]string{"app": "tail"}, [][]any{rdValue(hist.Add(time.Duration(i)*time.Second).UnixNano(), fmt.Sprintf("old %d", i))}, "X-Scope-OrgID", "acme")
	}
	rdPush(t, s, map[string]string{"app": "tail"}, [][]any{rdValue(hist.UnixNano(), "other tenant")}, "X-Scope-OrgID", "other")

	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, wsURL+"/loki/api/v1/tail?"+url.Values{"query": {`{app="tail"}`}, "limit": {"3"}, "delay_for": {"1"}}.Encode(),
		&websocket.DialOptions{HTTPHeader: http.Header{"X-Scope-OrgID": {"acme"}}})
	require.NoError(t, err)
	defer c.CloseNow()
	// History: the newest 3, oldest first.
	require.Equal(t, []string{"tail:old 2", "tail:old 3", "tail:old 4"}, readTail(t, c, 3))

	// Live lines, from two streams, arrive once each in order.
	var want []string
	for i := 0; i < 6; i++ {
		now := time.Now().UnixNano()
		app := "tail"
		if i%2 == 1 {
			app = "tail2"
		}
		rdPush(t, s, map[string]string{"app": "tail", "pod": app}, [][]any{rdValue(now, fmt.Sprintf("new %d", i))}, "X-Scope-OrgID", "acme")
		rdPush(t, s, map[string]string{"app": "tail"}, [][]any{rdValue(now, "noise")}, "X-Scope-OrgID", "other")
		want = append(want, fmt.Sprintf("tail:new %d", i))
		if i == 2 {
			time.Sleep(600 * time.Millisecond) // spread over several polls
		}
	}
	require.Equal(t, want, readTail(t, c, len(want)))
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))

	// Parameter errors are plain HTTP errors before the upgrade.
	_, resp, err := websocket.Dial(ctx, wsURL+"/loki/api/v1/tail?"+url.Values{"query": {`{app="tail"}`}, "delay_for": {"6"}}.Encode(),
		&websocket.DialOptions{HTTPHeader: http.Header{"X-Scope-OrgID": {"acme"}}})
	require.Error(t, err)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	_, resp, err = websocket.Dial(ctx, wsURL+"/loki/api/v1/tail?"+url.Values{"query": {`{app="tail"}`}}.Encode(), nil)
	require.Error(t, err)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	_, resp, err = websocket.Dial(ctx, wsURL+"/loki/api/v1/tail?"+url.Values{"query": {`sum(rate({app="tail"}[1m]))`}}.Encode(),
		&websocket.DialOptions{HTTPHeader: http.Header{"X-Scope-OrgID": {"acme"}}})
	require.Error(t, err)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// The legacy endpoint answers in the old shape.
	c, _, err = websocket.Dial(ctx, wsURL+"/api/prom/tail?"+url.Values{"query": {`{app="tail", pod=""}`}, "limit": {"1"}}.Encode(),
		&websocket.DialOptions{HTTPHeader: http.Header{"X-Scope-OrgID": {"acme"}}})
	require.NoError(t, err)
	defer c.CloseNow()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, b, err := c.Read(rctx)
	require.NoError(t, err)
	var old struct {
		Streams []struct {
			Labels  string `json:"labels"`
			Entries []struct {
				TS   string `json:"ts"`
				Line string `json:"line"`
			} `json:"entries"`
		} `json:"streams"`
	}
	require.NoError(t, json.Unmarshal(b, &old), "%s", b)
	require.Len(t, old.Streams, 1)
	require.Equal(t, "old 4", old.Streams[0].Entries[0].Line)
}

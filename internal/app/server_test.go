package app

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/stretchr/testify/require"

	"github.com/ledgerlog/ledgerlog/internal/ingest"
	"github.com/ledgerlog/ledgerlog/internal/model"
)

func TestServerPushQueryMetadata(t *testing.T) {
	s := startServer(t, tempDir(t))
	now := time.Now().Truncate(time.Second)
	base := now.Add(-10 * time.Minute).UnixNano()

	// JSON push.
	r := s.pushJSON(map[string]string{"service": "ledger", "env": "prod"},
		[]int64{base, base + 1, base + 2}, []string{"first", "second ERROR", "third"})
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))

	// Snappy protobuf push.
	body := snappy.Encode(nil, ingest.AppendProto(nil, []model.Stream{{
		Labels:  model.LabelsFromStrings("service", "auth", "env", "prod"),
		Entries: []model.Entry{{Timestamp: base + 3, Line: "login ok"}, {Timestamp: base + 4, Line: "login ERROR"}},
	}}))
	r = s.do(http.MethodPost, "/loki/api/v1/push", body, "Content-Type", "application/x-protobuf")
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))

	// Gzip JSON push.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(fmt.Sprintf(`{"streams":[{"stream":{"service":"kyc"},"values":[["%d","kyc line",{"trace_id":"abc"}]]}]}`, base+5)))
	require.NoError(t, zw.Close())
	r = s.do(http.MethodPost, "/loki/api/v1/push", gz.Bytes(), "Content-Type", "application/json", "Content-Encoding", "gzip")
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))

	start, end := base-1, now.UnixNano()
	rows, res := s.queryRange(`{env="prod"}`, start, end, 100, "forward")
	require.Equal(t, []string{
		"env=prod,service=ledger\t" + strconv.FormatInt(base, 10) + "\tfirst",
		"env=prod,service=ledger\t" + strconv.FormatInt(base+1, 10) + "\tsecond ERROR",
		"env=prod,service=ledger\t" + strconv.FormatInt(base+2, 10) + "\tthird",
		"env=prod,service=auth\t" + strconv.FormatInt(base+3, 10) + "\tlogin ok",
		"env=prod,service=auth\t" + strconv.FormatInt(base+4, 10) + "\tlogin ERROR",
	}, sortRowsByTS(rows))
	require.Equal(t, "streams", res.Data.ResultType)
	require.NotNil(t, res.Data.Stats["summary"])

	rows, _ = s.queryRange(`{env="prod"} |= "ERROR"`, start, end, 100, "backward")
	require.Len(t, rows, 2)
	rows, _ = s.queryRange(`{env="prod"} |~ "ERR(OR)?" != "login"`, start, end, 100, "backward")
	require.Len(t, rows, 1)
	rows, _ = s.queryRange(`{env="prod"}`, start, end, 2, "backward")
	require.Len(t, rows, 2, "limit applies across streams")
	require.Contains(t, rows[0], "login ERROR", "backward returns the newest first")

	// Structured metadata: folded into stream labels by default, separate
	// with categorize-labels.
	rows, _ = s.queryRange(`{service="kyc"}`, start, end, 10, "forward")
	require.Len(t, rows, 1)
	_, res = s.queryRange(`{service="kyc"}`, start, end, 10, "forward", "X-Loki-Response-Encoding-Flags", "categorize-labels")
	require.Len(t, res.Data.Result[0].Values[0], 3)

	// Data is queryable at once, and still after a flush.
	r = s.do(http.MethodPost, "/flush", nil)
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	rows, _ = s.queryRange(`{env="prod"}`, start, end, 100, "forward")
	require.Len(t, rows, 5)

	p := url.Values{"start": {strconv.FormatInt(start, 10)}, "end": {strconv.FormatInt(end, 10)}}
	r = s.get("/loki/api/v1/labels", p)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, string(r.body), `"service"`)
	r = s.get("/loki/api/v1/label/service/values", p)
	require.JSONEq(t, `{"status":"success","data":["auth","kyc","ledger"]}`, string(r.body))
	p.Set("match[]", `{service="auth"}`)
	r = s.get("/loki/api/v1/series", p)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.Contains(t, string(r.body), `"service":"auth"`)
	p.Del("match[]")
	p.Set("query", `{env="prod"}`)
	r = s.get("/loki/api/v1/index/stats", p)
	var st map[string]int64
	require.NoError(t, json.Unmarshal(r.body, &st))
	require.Equal(t, int64(2), st["streams"])
	require.Equal(t, int64(5), st["entries"])

	r = s.get("/loki/api/v1/status/buildinfo", nil)
	require.Contains(t, string(r.body), `"version":"3.`)
	r = s.get("/metrics", nil)
	require.Contains(t, string(r.body), "loki_request_duration_seconds")
	r = s.get("/config", nil)
	require.Contains(t, string(r.body), "http_listen_port")
}

func sortRowsByTS(rows []string) []string {
	out := append([]string(nil), rows...)
	ts := func(r string) string { return strings.Split(r, "\t")[1] }
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && ts(out[j]) < ts(out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func TestServerMultiTenant(t *testing.T) {
	s := startServer(t, tempDir(t), "-auth.enabled")
	now := time.Now().UnixNano()
	r := s.pushJSON(map[string]string{"app": "a"}, []int64{now - 1000}, []string{"hello"})
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Equal(t, "no org id", strings.TrimSpace(string(r.body)))
	require.Equal(t, http.StatusNoContent, s.pushJSON(map[string]string{"app": "a"}, []int64{now - 1000}, []string{"from one"}, "X-Scope-OrgID", "one").status)
	require.Equal(t, http.StatusNoContent, s.pushJSON(map[string]string{"app": "a"}, []int64{now - 999}, []string{"from two"}, "X-Scope-OrgID", "two").status)

	rows, _ := s.queryRange(`{app="a"}`, now-int64(time.Hour), now, 100, "forward", "X-Scope-OrgID", "one")
	require.Len(t, rows, 1)
	require.Contains(t, rows[0], "from one")
	_, res := s.queryRange(`{app="a"}`, now-int64(time.Hour), now, 100, "forward", "X-Scope-OrgID", "one|two")
	require.Len(t, res.Data.Result, 2)
	tenants := []string{res.Data.Result[0].Stream["__tenant_id__"], res.Data.Result[1].Stream["__tenant_id__"]}
	require.ElementsMatch(t, []string{"one", "two"}, tenants)
	r = s.get("/loki/api/v1/query_range?query="+url.QueryEscape(`{app="a"}`), nil)
	require.Equal(t, http.StatusUnauthorized, r.status)
}

func TestServerOTLPAndLegacyPush(t *testing.T) {
	s := startServer(t, tempDir(t))
	now := time.Now().Add(-time.Minute).UnixNano()
	otlp := fmt.Sprintf(`{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},"scopeLogs":[{"logRecords":[{"timeUnixNano":"%d","severityText":"ERROR","body":{"stringValue":"card declined"},"attributes":[{"key":"order.id","value":{"stringValue":"o-1"}}]}]}]}]}`, now)
	r := s.do(http.MethodPost, "/otlp/v1/logs", []byte(otlp), "Content-Type", "application/json")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	_, res := s.queryRange(`{service_name="checkout"}`, now-1, now+1, 10, "forward", "X-Loki-Response-Encoding-Flags", "categorize-labels")
	require.Len(t, res.Data.Result, 1)
	require.Equal(t, "card declined", res.Data.Result[0].Values[0][1])
	meta, _ := json.Marshal(res.Data.Result[0].Values[0][2])
	require.Contains(t, string(meta), `"order_id":"o-1"`)

	legacy := fmt.Sprintf(`{"streams":[{"labels":"{app=\"old\"}","entries":[{"ts":"%s","line":"legacy line"}]}]}`, time.Unix(0, now).UTC().Format(time.RFC3339Nano))
	r = s.do(http.MethodPost, "/api/prom/push", []byte(legacy), "Content-Type", "application/json")
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	rows, _ := s.queryRange(`{app="old"}`, now-1, now+1, 10, "forward")
	require.Len(t, rows, 1)
}

func TestPrintConfig(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, RunServer(t.Context(), []string{"-print-config", "-server.http-listen-port", "4321"}, &out, &bytes.Buffer{}))
	require.Contains(t, out.String(), "http_listen_port: 4321")
	require.Contains(t, out.String(), "path_prefix: ./data")
}

package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/ledgerlog/ledgerlog/internal/api/loki"
	"github.com/ledgerlog/ledgerlog/internal/ingest"
	"github.com/ledgerlog/ledgerlog/internal/logql/engine"
	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage"
	"github.com/ledgerlog/ledgerlog/internal/storage/head"
	"github.com/ledgerlog/ledgerlog/internal/tenant"
)

// queryParams are the parameters of a query_range call over [start, end).
func queryParams(q string, start, end time.Time, extra ...string) url.Values {
	v := url.Values{"query": {q}, "start": {strconv.FormatInt(start.UnixNano(), 10)}, "end": {strconv.FormatInt(end.UnixNano(), 10)}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return v
}

// TestEngineHTTPLimits checks the query limits through the HTTP API of a
// real server: status codes and Loki's messages (LQ-X3).
func TestEngineHTTPLimits(t *testing.T) {
	s := startServer(t, tempDir(t),
		"-querier.max-query-series", "2",
		"-validation.max-entries-limit", "10",
		"-store.max-query-length", "1h",
		"-querier.max-query-bytes-read", "1KB",
		"-querier.max-query-lookback", "15m",
	)
	now := time.Now()
	var ts []int64
	var lines []string
	for i := range 3 {
		ts = append(ts, now.Add(-5*time.Minute+time.Duration(i)*time.Second).UnixNano())
		lines = append(lines, fmt.Sprintf("line %d", i))
	}
	for _, pod := range []string{"a", "b", "c"} {
		require.Equal(t, http.StatusNoContent, s.pushJSON(map[string]string{"app": "small", "pod": pod}, ts, lines).status)
	}
	// An old entry, before now-15m, and an entry now-10m.
	require.Equal(t, http.StatusNoContent, s.pushJSON(map[string]string{"app": "lookback"},
		[]int64{now.Add(-20 * time.Minute).UnixNano(), now.Add(-10 * time.Minute).UnixNano()}, []string{"old", "recent"}).status)
	// 2000 bytes of lines in one stream.
	var bigTS []int64
	var big []string
	for i := range 20 {
		bigTS = append(bigTS, now.Add(-4*time.Minute+time.Duration(i)*time.Second).UnixNano())
		big = append(big, strings.Repeat("x", 100))
	}
	require.Equal(t, http.StatusNoContent, s.pushJSON(map[string]string{"app": "big"}, bigTS, big).status)

	start, end := now.Add(-30*time.Minute), now.Add(time.Minute)
	expectError := func(status int, msg string, params url.Values) {
		t.Helper()
		r := s.get("/loki/api/v1/query_range", params)
		require.Equal(t, status, r.status, "%s", r.body)
		require.Equal(t, msg, string(r.body))
		require.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "text/plain"), r.header.Get("Content-Type"))
	}

	// max_query_series: three series from a metric query, both as the
	// result and as the input of topk.
	expectError(http.StatusBadRequest, "maximum number of series (2) reached for a single query; consider reducing query cardinality by adding more specific stream selectors, reducing the time range, or aggregating results with functions like sum(), count() or topk()",
		queryParams(`count_over_time({app="small"}[1m])`, start, end, "step", "60s"))
	r := s.get("/loki/api/v1/query_range", queryParams(`sum(count_over_time({app="small"}[10m]))`, start, end, "step", "60s"))
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)

	// max_entries_limit_per_query.
	expectError(http.StatusBadRequest, "max entries limit per query exceeded, limit > max_entries_limit_per_query (11 > 10)",
		queryParams(`{app="small"}`, start, end, "limit", "11"))
	rows, _ := s.queryRange(`{app="small"}`, start.UnixNano(), end.UnixNano(), 10, "backward")
	require.Len(t, rows, 9)

	// max_query_length applies after the lookback clamp, as in Loki's
	// frontend: a 2h query clamped to 15m is within 1h.
	rows, _ = s.queryRange(`{app="small"}`, now.Add(-2*time.Hour).UnixNano(), now.UnixNano(), 10, "backward")
	require.Len(t, rows, 9)

	// max_query_bytes_read: estimated from chunk metadata before reading
	// (2000 bytes of lines plus the detected_level metadata of 20 entries).
	expectError(http.StatusBadRequest, "the query would read too many bytes (query: 2.4 KiB, limit: 1.0 KiB); consider adding more specific stream selectors or reduce the time range of the query",
		queryParams(`{app="big"}`, start, end))
	r = s.get("/loki/api/v1/query_range", queryParams(`sum(rate({app=~"big|small"}[1m]))`, start, end, "step", "60s"))
	require.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
	require.True(t, strings.HasPrefix(string(r.body), "the query would read too many bytes (query: "), "%s", r.body)
	r = s.get("/loki/api/v1/query_range", queryParams(`sum(rate({app="small"}[1m]))`, start, end, "step", "60s"))
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)

	// max_query_lookback: data before now-15m is not read.
	rows, _ = s.queryRange(`{app="lookback"}`, start.UnixNano(), end.UnixNano(), 10, "forward")
	require.Len(t, rows, 1)
	require.Contains(t, rows[0], "recent")
	rows, _ = s.queryRange(`{app="lookback"}`, start.UnixNano(), now.Add(-16*time.Minute).UnixNano(), 10, "forward")
	require.Empty(t, rows)
}

// TestEngineHTTPLengthAndTimeout: a time range over max_query_length is a
// 400, a query over query_timeout a 504, both with Loki's texts.
func TestEngineHTTPLengthAndTimeout(t *testing.T) {
	s := startServer(t, tempDir(t), "-querier.query-timeout", "1ns", "-store.max-query-length", "1h")
	now := time.Now()
	require.Equal(t, http.StatusNoContent, s.pushJSON(map[string]string{"app": "a"}, []int64{now.Add(-time.Minute).UnixNano()}, []string{"x"}).status)
	r := s.get("/loki/api/v1/query_range", queryParams(`{app="a"}`, now.Add(-2*time.Hour), now))
	require.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
	require.Equal(t, "the query time range exceeds the limit (query length: 2h0m0s, limit: 1h)", string(r.body))
	r = s.get("/loki/api/v1/query_range", queryParams(`sum(count_over_time({app="a"}[1m]))`, now.Add(-time.Hour), now, "step", "60s"))
	require.Equal(t, http.StatusGatewayTimeout, r.status, "%s", r.body)
	require.Equal(t, "request timed out, decrease the duration of the request or add more label matchers (prefer exact match over regex match) to reduce the amount of data processed", string(r.body))
}

// TestEngineHTTPCancelStopsReading: when the client of a long query goes
// away, the engine stops reading storage. The API, engine and storage are
// the server's own, wired by hand so that the engine's scanned-entries
// counter can be watched.
func TestEngineHTTPCancelStopsReading(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 400k entries")
	}
	ctx := context.Background()
	db, err := storage.Open(ctx, storage.Options{Bucket: objstore.NewInMemBucket(), BlockWindow: 24 * time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close(ctx) })
	overrides := tenant.NewOverrides(tenant.Defaults())
	eng := engine.New(db, overrides, engine.Options{})
	api := loki.New(loki.Options{
		Store:       db,
		Engine:      eng,
		Overrides:   overrides,
		Tenants:     tenant.Resolver{},
		Validator:   ingest.NewValidator(nil, nil),
		MaxPushBody: 64 << 20,
	})
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)

	const streams, perStream = 40, 10_000
	base := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	for s := range streams {
		st := model.Stream{Labels: model.LabelsFromStrings("app", "cancel", "pod", fmt.Sprintf("p%02d", s))}
		for i := range perStream {
			st.Entries = append(st.Entries, model.Entry{
				Timestamp: base.Add(time.Duration(i) * time.Second).UnixNano(),
				Line:      fmt.Sprintf(`{"level":"info","n":%d,"msg":"request %d served","user":"u%d"}`, i, i, i%97),
			})
		}
		require.NoError(t, db.Push(model.TenantFake, []model.Stream{st}, head.Limits{UnorderedWrites: true}))
	}
	const total = streams * perStream

	// Every line goes through json, a template and a regexp: a query that
	// reads all 400k entries and takes far longer than the reaction below.
	q := `sum by (user) (count_over_time({app="cancel"} | json | line_format "{{.msg}} for {{.user}}" | regexp "request (?P<req>\\d+) served for (?P<who>u\\d+)" | req > 3 [1m]))`
	params := queryParams(q, base, base.Add(3*time.Hour), "step", "60s")
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(qctx, http.MethodGet, srv.URL+"/loki/api/v1/query_range?"+params.Encode(), nil)
	require.NoError(t, err)
	before := eng.EntriesScanned()
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
		}
		done <- err
	}()
	// Cancel as soon as the engine has started reading.
	deadline := time.Now().Add(30 * time.Second)
	for eng.EntriesScanned() == before {
		require.True(t, time.Now().Before(deadline), "the query never started reading")
		time.Sleep(time.Millisecond)
	}
	cancel()
	require.True(t, errors.Is(<-done, context.Canceled))

	// The counter settles, well below what the whole query reads, and stays
	// there.
	var settled int64
	for prev := int64(-1); ; {
		cur := eng.EntriesScanned()
		if cur == prev {
			settled = cur
			break
		}
		require.True(t, time.Now().Before(deadline), "the engine kept reading after the client went away")
		prev = cur
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, settled, eng.EntriesScanned())
	require.Less(t, settled-before, int64(total), "the whole query ran")
	t.Logf("read %d of %d entries before stopping", settled-before, total)
}

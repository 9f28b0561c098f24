package ruler

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// rwRecorder decodes remote-write requests as Prometheus' receiver does;
// statuses lists the answers to the first requests (then 204). The real
// Prometheus is exercised by the application's integration test.
type rwRecorder struct {
	mu       sync.Mutex
	statuses []int
	headers  []http.Header
	series   []string // "labels value@ms"
	requests int
}

func (r *rwRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	r.headers = append(r.headers, req.Header.Clone())
	if len(r.statuses) > 0 {
		code := r.statuses[0]
		r.statuses = r.statuses[1:]
		http.Error(w, "no", code)
		return
	}
	b, _ := io.ReadAll(req.Body)
	raw, err := snappy.Decode(nil, b)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(raw); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, ts := range wr.Timeseries {
		var ls []string
		for _, l := range ts.Labels {
			ls = append(ls, l.Name+"="+l.Value)
		}
		for _, s := range ts.Samples {
			v := "stale"
			if !math.IsNaN(s.Value) {
				v = strconv.FormatFloat(s.Value, 'g', -1, 64)
			}
			r.series = append(r.series, strings.Join(ls, ",")+" "+v)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *rwRecorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]string(nil), r.series...)
	sort.Strings(out)
	return out
}

const recordExpr = `sum by (service) (count_over_time({service=~".+"}[1m]))`

func TestRemoteWriteRecordingRules(t *testing.T) {
	rec := &rwRecorder{statuses: []int{http.StatusInternalServerError, http.StatusServiceUnavailable}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	q := newScripted()
	q.set(recordExpr, Vector{sample(5, "service", "ledger"), sample(7, "service", "payments")})
	m, dir := testManager(t, q.query, func(c *Config) {
		c.ExternalLabels = map[string]string{"cluster": "eu-1"}
		c.RemoteWrite.Enabled = true
		c.RemoteWrite.Clients = map[string]RemoteWriteClient{"prom": {
			URL:         srv.URL + "/api/v1/write",
			Headers:     map[string]string{"X-Extra": "1"},
			BasicAuth:   &BasicAuth{Username: "u", Password: "p"},
			QueueConfig: QueueConfig{MinBackoff: 1_000_000, MaxBackoff: 5_000_000},
		}}
	})
	writeRules(t, dir, "tenant-1", "rec", `groups:
  - name: rec
    interval: 1s
    rules:
      - record: service:lines:count1m
        expr: `+recordExpr+`
        labels:
          source: ledgerlog
`)
	running(t, m)
	waitFor(t, "samples", func() bool { return len(rec.got()) >= 2 })
	got := rec.got()
	require.Contains(t, got, "__name__=service:lines:count1m,cluster=eu-1,service=ledger,source=ledgerlog 5")
	require.Contains(t, got, "__name__=service:lines:count1m,cluster=eu-1,service=payments,source=ledgerlog 7")
	rec.mu.Lock()
	h := rec.headers[len(rec.headers)-1]
	require.GreaterOrEqual(t, rec.requests, 3, "two failures were retried")
	rec.mu.Unlock()
	require.Equal(t, "snappy", h.Get("Content-Encoding"))
	require.Equal(t, "application/x-protobuf", h.Get("Content-Type"))
	require.Equal(t, "0.1.0", h.Get("X-Prometheus-Remote-Write-Version"))
	require.Equal(t, "tenant-1", h.Get("X-Scope-OrgID"))
	require.Equal(t, "1", h.Get("X-Extra"))
	require.Equal(t, "Basic dTpw", h.Get("Authorization"))
	require.GreaterOrEqual(t, testutil.ToFloat64(m.metrics.rwRetries.WithLabelValues("prom")), 2.0)

	// A series that disappears gets a staleness marker.
	q.set(recordExpr, Vector{sample(5, "service", "ledger")})
	waitFor(t, "staleness marker", func() bool {
		for _, s := range rec.got() {
			if strings.Contains(s, "service=payments") && strings.HasSuffix(s, " stale") {
				return true
			}
		}
		return false
	})
}

// A 4xx answer is not retried.
func TestRemoteWriteRejectedIsDropped(t *testing.T) {
	rec := &rwRecorder{statuses: []int{http.StatusBadRequest}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	m, _ := testManager(t, newScripted().query, func(c *Config) {
		c.RemoteWrite.Enabled = true
		c.RemoteWrite.Client = &RemoteWriteClient{URL: srv.URL}
	})
	stop := running(t, m)
	m.writer.append("fake", time.Unix(100, 0), Vector{sample(1, "__name__", "x")})
	waitFor(t, "rejection counted", func() bool {
		return testutil.ToFloat64(m.metrics.rwFailed.WithLabelValues("default")) == 1
	})
	stop()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Equal(t, 1, rec.requests)
}

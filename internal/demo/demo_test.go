package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ledgerlog/ledgerlog/internal/ingest"
	"github.com/ledgerlog/ledgerlog/internal/logql/pipeline"
	"github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/model"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memSink keeps every record.
type memSink struct {
	mu   sync.Mutex
	recs []Record
}

func (s *memSink) Write(_ context.Context, recs []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, recs...)
	return nil
}

func (s *memSink) Close(context.Context) error { return nil }

var testStart = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// backfill generates d of traffic under scenario sc without waiting.
func backfill(t testing.TB, seed uint64, sc Scenario, rate float64, d time.Duration, m *Metrics) []Record {
	t.Helper()
	sink := &memSink{}
	st, err := Run(context.Background(), NewGenerator(Options{Seed: seed}), NewController(sc, nil), m, []Sink{sink},
		RunOptions{Rate: rate, Start: testStart, Duration: d})
	require.NoError(t, err)
	require.Equal(t, len(sink.recs), st.Lines)
	return sink.recs
}

// tracingLine is the shape tracing_subscriber's JSON layer writes.
type tracingLine struct {
	Timestamp string         `json:"timestamp"`
	Level     string         `json:"level"`
	Fields    map[string]any `json:"fields"`
	Target    string         `json:"target"`
	Span      map[string]any `json:"span"`
	ThreadID  string         `json:"threadId"`
}

var (
	threadRE = regexp.MustCompile(`^ThreadId\(\d+\)$`)
	traceRE  = regexp.MustCompile(`^[0-9a-f]{32}$`)
	keyOrder = regexp.MustCompile(`^\{"timestamp":"[^"]+","level":"[A-Z]+","fields":\{"message":"[^"]+","event":"[a-z_]+"`)
)

func TestLinesAreTracingJSON(t *testing.T) {
	// Through Ledgerlog's own `| json` stage: the names the seed's queries
	// need after flattening.
	sel, err := syntax.ParseLogSelector(`{service=~".+"} | json`, true)
	require.NoError(t, err)
	p, err := pipeline.New(sel.Pipeline())
	require.NoError(t, err)

	seen := map[string]map[string]bool{} // event -> flattened labels seen
	for _, sc := range Scenarios() {
		for _, rec := range backfill(t, 7, sc, 40, time.Minute, nil) {
			var tl tracingLine
			require.NoError(t, json.Unmarshal([]byte(rec.Line), &tl), rec.Line)
			require.Regexp(t, keyOrder, rec.Line)
			ts, err := time.Parse(time.RFC3339Nano, tl.Timestamp)
			require.NoError(t, err)
			require.True(t, strings.HasSuffix(tl.Timestamp, "Z"))
			require.Equal(t, rec.Timestamp/1000, ts.UnixNano()/1000, "timestamp field is the entry time to the microsecond")
			require.Equal(t, rec.Level, tl.Level)
			require.Equal(t, rec.Event, tl.Fields["event"])
			require.Equal(t, targets[rec.Service], tl.Target)
			require.Regexp(t, threadRE, tl.ThreadID)
			require.NotEmpty(t, tl.Span["name"])
			if rec.TraceID != "" {
				require.Regexp(t, traceRE, rec.TraceID)
				require.Equal(t, rec.TraceID, tl.Fields["trace_id"])
			} else {
				require.NotContains(t, tl.Fields, "trace_id")
			}
			require.Equal(t, rec.Service, rec.Labels.Get("service"))
			require.Equal(t, LevelLabel(rec.Level), rec.Labels.Get("level"))
			require.Equal(t, "prod", rec.Labels.Get("environment"))
			require.Equal(t, "eu-west", rec.Labels.Get("region"))

			_, lbls, keep := p.ForStream(rec.Labels).ProcessString(rec.Timestamp, rec.Line, model.EmptyLabels())
			require.True(t, keep)
			require.Empty(t, lbls.Err(), rec.Line)
			if seen[rec.Event] == nil {
				seen[rec.Event] = map[string]bool{}
			}
			lbls.All().Range(func(l model.Label) { seen[rec.Event][l.Name] = true })
		}
	}
	f := func(event string, names ...string) {
		t.Helper()
		require.Contains(t, seen, event)
		for _, n := range names {
			require.True(t, seen[event][n], "event %s lacks %s after | json (has %v)", event, n, seen[event])
		}
	}
	f("transaction_completed", "fields_amount", "fields_currency", "fields_processing_time_ms", "fields_risk_score", "fields_trace_id", "fields_message", "span_name", "target", "level_extracted")
	f("transaction_failed", "fields_amount", "fields_currency", "fields_processing_time_ms", "fields_error_code")
	f("request_received", "fields_amount", "fields_currency")
	f("suspicious_activity", "fields_risk_score", "fields_amount")
	f("risk_assessed", "fields_risk_score")
	f("verification_failed", "fields_country", "fields_reason")
	f("compliance_violation", "fields_rule")
}

// mix summarises a run the way the alert expressions see it.
type mix struct {
	processor, processorErr int
	suspicious              int
	compliance              int
	kycFailed               map[string]int
	seconds                 float64
}

func measure(t *testing.T, recs []Record, d time.Duration) mix {
	t.Helper()
	m := mix{kycFailed: map[string]int{}, seconds: d.Seconds()}
	for _, r := range recs {
		// The markers appear only where they mean what the rules assume.
		require.Equal(t, r.Level == "ERROR", strings.Contains(r.Line, MarkerError), r.Line)
		if strings.Contains(r.Line, MarkerSuspicious) {
			require.Equal(t, "fraud-detection", r.Service)
			m.suspicious++
		}
		if strings.Contains(r.Line, MarkerCompliance) {
			require.Equal(t, "compliance_violation", r.Event)
			m.compliance++
		}
		if r.Service == "payment-processor" {
			m.processor++
			if strings.Contains(r.Line, MarkerError) {
				m.processorErr++
			}
		}
		if r.Service == "kyc-service" && strings.Contains(r.Line, "verification_failed") {
			var tl tracingLine
			require.NoError(t, json.Unmarshal([]byte(r.Line), &tl))
			m.kycFailed[tl.Fields["country"].(string)]++
		}
	}
	return m
}

func (m mix) errorRatio() float64        { return float64(m.processorErr) / float64(m.processor) }
func (m mix) suspiciousPerSec() float64  { return float64(m.suspicious) / m.seconds }
func (m mix) kycPerSec(c string) float64 { return float64(m.kycFailed[c]) / m.seconds }
func (m mix) kycTopPerSec() float64 {
	top := 0
	for _, n := range m.kycFailed {
		top = max(top, n)
	}
	return float64(top) / m.seconds
}

func TestScenariosChangeTheMix(t *testing.T) {
	const d = 5 * time.Minute
	got := map[Scenario]mix{}
	for _, sc := range Scenarios() {
		got[sc] = measure(t, backfill(t, 11, sc, 20, d, nil), d)
		t.Logf("%-20s pp_error_ratio=%.3f suspicious/s=%.2f compliance=%d kyc_failed_top/s=%.2f",
			sc, got[sc].errorRatio(), got[sc].suspiciousPerSec(), got[sc].compliance, got[sc].kycTopPerSec())
	}
	for _, sc := range Scenarios() {
		m := got[sc]
		// HighErrorRate: sum(rate(|= "ERROR"))/sum(rate) > 0.05.
		require.Equal(t, sc == ErrorSpike, m.errorRatio() > 0.05, "%s: error ratio %.3f", sc, m.errorRatio())
		// SuspiciousTransactionPattern: sum(rate(|= "SUSPICIOUS"[1m])) > 10.
		require.Equal(t, sc == FraudBurst, m.suspiciousPerSec() > 10, "%s: %.2f suspicious/s", sc, m.suspiciousPerSec())
		// ComplianceViolation: count_over_time(|~ "COMPLIANCE_VIOLATION"[1h]) > 0.
		require.Equal(t, sc == ComplianceViolation, m.compliance > 0, "%s: %d violations", sc, m.compliance)
		// KYC failure wave: NG dominates.
		require.Equal(t, sc == KYCFailures, m.kycPerSec("NG") > 1, "%s: NG %.2f failures/s", sc, m.kycPerSec("NG"))
	}
	require.Greater(t, got[ErrorSpike].errorRatio(), 0.2)
	require.Less(t, got[Normal].errorRatio(), 0.03)
	require.InDelta(t, ComplianceRate*d.Seconds(), got[ComplianceViolation].compliance, 1)
}

func TestRateBounds(t *testing.T) {
	recs := backfill(t, 1, Normal, 37, 10*time.Second, nil)
	require.Len(t, recs, 370)
	for i := 1; i < len(recs); i++ {
		require.LessOrEqual(t, recs[i-1].Timestamp, recs[i].Timestamp)
	}
	require.GreaterOrEqual(t, recs[0].Timestamp, testStart.UnixNano())
	require.Less(t, recs[len(recs)-1].Timestamp, testStart.Add(10*time.Second).UnixNano())

	sink := &memSink{}
	st, err := Run(context.Background(), NewGenerator(Options{Seed: 1}), NewController(FraudBurst, nil), nil, []Sink{sink},
		RunOptions{Rate: 50, Start: testStart, Lines: 123})
	require.NoError(t, err)
	require.Equal(t, 123, st.Lines)
	require.Len(t, sink.recs, 123)
}

func TestLiveRunStopsOnContext(t *testing.T) {
	// Live pacing: a start of "now" waits for the clock; cancellation ends
	// the run promptly and flushes the sinks.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	sink := &memSink{}
	st, err := Run(ctx, NewGenerator(Options{Seed: 1}), NewController(Normal, nil), nil, []Sink{sink}, RunOptions{Rate: 100})
	require.NoError(t, err)
	require.Equal(t, st.Lines, len(sink.recs))
	require.Less(t, st.Lines, 100, "a live run does not run ahead of the clock")
}

func ndjson(t *testing.T, seed uint64, sc Scenario) []byte {
	t.Helper()
	var buf bytes.Buffer
	_, err := Run(context.Background(), NewGenerator(Options{Seed: seed}), NewController(sc, nil), nil,
		[]Sink{NewNDJSONSink(&buf)}, RunOptions{Rate: 30, Start: testStart, Duration: 20 * time.Second})
	require.NoError(t, err)
	return buf.Bytes()
}

func TestDeterministicForSeed(t *testing.T) {
	for _, sc := range Scenarios() {
		a, b := ndjson(t, 5, sc), ndjson(t, 5, sc)
		require.Equal(t, a, b, sc.String())
		require.NotEqual(t, a, ndjson(t, 6, sc), sc.String())
	}
	// The records are the bench dataset's format.
	first, _, _ := bytes.Cut(ndjson(t, 5, Normal), []byte("\n"))
	var rec struct {
		Labels string `json:"labels"`
		TS     int64  `json:"ts"`
		Line   string `json:"line"`
	}
	require.NoError(t, json.Unmarshal(first, &rec))
	ls, err := model.ParseLabels(rec.Labels)
	require.NoError(t, err)
	require.Equal(t, "prod", ls.Get("environment"))
	require.Positive(t, rec.TS)
	require.Contains(t, rec.Line, `"fields":{"message":`)
}

func TestMetricsServeExemplarsThatPointAtLogLines(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, 1)
	require.NoError(t, err)
	recs := backfill(t, 3, ErrorSpike, 50, 20*time.Second, m)
	traceLines := map[string]int{}
	for _, r := range recs {
		if r.TraceID != "" {
			require.Contains(t, r.Line, `"trace_id":"`+r.TraceID+`"`)
			traceLines[r.TraceID]++
		}
	}

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	defer srv.Close()
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	// What Prometheus sends first.
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Contains(t, resp.Header.Get("Content-Type"), "application/openmetrics-text")
	text := string(body)

	for _, fam := range []string{
		"# TYPE financial_transactions counter",
		"# TYPE financial_transaction_duration_seconds histogram",
		"# TYPE account_balance_total gauge",
		"# TYPE fintech_active_connections gauge",
	} {
		require.Contains(t, text, fam)
	}
	require.Regexp(t, `financial_transactions_total\{environment="prod",service="payment-processor",status="failed"\} [1-9]\d*(\.0)?\n`, text)
	require.Regexp(t, `fintech_active_connections\{environment="prod",service="payment-gateway"\} \d+`, text)

	exRE := regexp.MustCompile(`financial_transaction_duration_seconds_bucket\{environment="prod",service="(payment-[a-z]+)",le="[^"]+"\} \d+ # \{trace_id="([0-9a-f]{32})"\} [0-9.e+-]+`)
	found := exRE.FindAllStringSubmatch(text, -1)
	require.NotEmpty(t, found, text)
	for _, ex := range found {
		require.Positive(t, traceLines[ex[2]], "exemplar trace_id %s of %s appears in no log line", ex[2], ex[1])
	}
}

func TestController(t *testing.T) {
	now := testStart
	c := NewController(Normal, func() time.Time { return now })
	srv := httptest.NewServer(c)
	defer srv.Close()
	get := func() ControllerState {
		t.Helper()
		resp, err := http.Get(srv.URL)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var st ControllerState
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
		return st
	}
	post := func(q string) int {
		t.Helper()
		resp, err := http.Post(srv.URL+"?"+q, "", nil)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		require.NoError(t, resp.Body.Close())
		return resp.StatusCode
	}
	require.Equal(t, "normal", get().Name)
	require.Equal(t, http.StatusOK, post("name=fraud-burst&duration=2m"))
	st := get()
	require.Equal(t, "fraud-burst", st.Name)
	require.Equal(t, "normal", st.Base)
	require.Equal(t, testStart.Add(2*time.Minute), *st.Until)
	require.Equal(t, FraudBurst, c.Current())
	now = now.Add(2 * time.Minute)
	require.Equal(t, Normal, c.Current())
	require.Equal(t, http.StatusOK, post("name=error-spike"))
	now = now.Add(time.Hour)
	require.Equal(t, ErrorSpike, c.Current(), "no duration: stays")
	require.Equal(t, "error-spike", get().Base)

	require.Equal(t, http.StatusBadRequest, post("name=meltdown"))
	require.Equal(t, http.StatusBadRequest, post("name=normal&duration=soon"))
	require.Equal(t, http.StatusBadRequest, post("name=normal&duration=-1m"))
	resp, err := http.DefaultClient.Do(mustRequest(t, http.MethodDelete, srv.URL))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	for _, sc := range Scenarios() {
		got, err := ParseScenario(sc.String())
		require.NoError(t, err)
		require.Equal(t, sc, got)
	}
}

func mustRequest(t *testing.T, method, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	require.NoError(t, err)
	return req
}

const sampleNotification = `{"version":"4","groupKey":"{}/{team=\"compliance\"}:{alertname=\"ComplianceViolation\"}","truncatedAlerts":0,
"status":"firing","receiver":"compliance-critical","groupLabels":{"alertname":"ComplianceViolation"},
"commonLabels":{"alertname":"ComplianceViolation","severity":"critical","team":"compliance"},
"commonAnnotations":{"summary":"Compliance violation detected"},"externalURL":"http://127.0.0.1:9093",
"alerts":[{"status":"firing","labels":{"alertname":"ComplianceViolation","severity":"critical","team":"compliance","service":"ledger"},
"annotations":{"summary":"Compliance violation detected"},"startsAt":"2026-11-25T09:00:00Z","endsAt":"0001-01-01T00:00:00Z",
"generatorURL":"","fingerprint":"a1b2"}]}`

func TestAlertLog(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	a := NewAlertLog(slogTo(&logs, &mu), 2)
	srv := httptest.NewServer(a)
	defer srv.Close()
	for range 3 {
		resp, err := http.Post(srv.URL+"/webhook/compliance-critical", "application/json", strings.NewReader(sampleNotification))
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	resp, err := http.Post(srv.URL+"/webhook/x", "application/json", strings.NewReader(`{"alerts":`))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)

	got := a.Notifications()
	require.Len(t, got, 2, "keeps the last 2")
	require.Equal(t, "compliance-critical", got[1].Receiver)
	require.Equal(t, "/webhook/compliance-critical", got[1].Path)
	require.Equal(t, "ledger", got[1].Alerts[0].Labels["service"])

	resp, err = http.Get(srv.URL + "/webhook")
	require.NoError(t, err)
	var listed []Notification
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&listed))
	require.NoError(t, resp.Body.Close())
	require.Len(t, listed, 2)
	mu.Lock()
	require.Contains(t, logs.String(), "alertname=ComplianceViolation")
	mu.Unlock()
}

func TestPushSinkRetriesAndDrops(t *testing.T) {
	var mu sync.Mutex
	var calls int
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		require.Equal(t, "/loki/api/v1/push", r.URL.Path)
		require.Equal(t, "application/x-protobuf", r.Header.Get("Content-Type"))
		require.Equal(t, "acme", r.Header.Get("X-Scope-OrgID"))
		if calls == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if calls >= 3 {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(r.Body)
		req, err := ingest.DecodeProto(body, 0)
		require.NoError(t, err)
		for _, s := range req.Streams {
			for _, e := range s.Entries {
				got = append(got, s.Labels.Get("service")+" "+e.Line)
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	ps, err := NewPushSink(PushOptions{URL: srv.URL, Tenant: "acme", BatchSize: 1000})
	require.NoError(t, err)
	recs := backfill(t, 2, Normal, 20, 5*time.Second, nil)
	ctx := context.Background()
	require.NoError(t, ps.Write(ctx, recs))
	require.NoError(t, ps.Close(ctx), "503 is retried")
	require.Equal(t, len(recs), ps.Pushed)
	require.Len(t, got, len(recs))
	require.Equal(t, recs[0].Service+" "+recs[0].Line, got[0])

	require.NoError(t, ps.Write(ctx, recs[:3]))
	err = ps.Close(ctx)
	require.ErrorIs(t, err, ErrPushDropped, "400 is not retried")
	require.Equal(t, 3, ps.Dropped)
	mu.Lock()
	require.Equal(t, 3, calls)
	mu.Unlock()

	for _, f := range []struct{ in, want string }{
		{"http://127.0.0.1:3100", "http://127.0.0.1:3100/loki/api/v1/push"},
		{"http://127.0.0.1:3100/", "http://127.0.0.1:3100/loki/api/v1/push"},
		{"http://h/custom/push", "http://h/custom/push"},
	} {
		u, err := NormalizePushURL(f.in)
		require.NoError(t, err)
		require.Equal(t, f.want, u)
	}
	_, err = NormalizePushURL("127.0.0.1:3100")
	require.Error(t, err)
}

func TestFileSink(t *testing.T) {
	dir := t.TempDir()
	fs, err := NewFileSink(dir)
	require.NoError(t, err)
	recs := backfill(t, 4, ComplianceViolation, 20, 10*time.Second, nil)
	require.NoError(t, fs.Write(context.Background(), recs))
	require.NoError(t, fs.Close(context.Background()))
	want := map[string]string{}
	for _, r := range recs {
		want[r.Service] += r.Line + "\n"
	}
	for svc, text := range want {
		b, err := readFile(dir, FileName(svc))
		require.NoError(t, err)
		require.Equal(t, text, string(b), svc)
	}
}

func FuzzDecodeNotification(f *testing.F) {
	f.Add([]byte(sampleNotification))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"alerts":[{"labels":null}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		a := NewAlertLog(nil, 1)
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/webhook/x", bytes.NewReader(body)))
		if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest {
			t.Fatalf("status %d", rec.Code)
		}
	})
}

func BenchmarkGenerator(b *testing.B) {
	g := NewGenerator(Options{Seed: 1})
	var bytes int64
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		rec := g.Baseline(int64(i), Normal)
		bytes += int64(len(rec.Line))
	}
	b.SetBytes(bytes / int64(max(b.N, 1)))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

func BenchmarkPushEncode(b *testing.B) {
	recs := backfill(b, 1, Normal, 100, 10*time.Second, nil)
	streams := map[string]*model.Stream{}
	var n int64
	for _, r := range recs {
		k := r.Labels.String()
		if streams[k] == nil {
			streams[k] = &model.Stream{Labels: r.Labels}
		}
		streams[k].Entries = append(streams[k].Entries, model.Entry{Timestamp: r.Timestamp, Line: r.Line})
		n += int64(len(r.Line))
	}
	var list []model.Stream
	for _, s := range streams {
		list = append(list, *s)
	}
	var raw []byte
	b.SetBytes(n)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		raw = ingest.AppendProto(raw[:0], list)
		_ = snappy.Encode(nil, raw)
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "lines/s")
}

// slogTo logs text to w under mu.
func slogTo(w io.Writer, mu *sync.Mutex) *slog.Logger {
	return slog.New(slog.NewTextHandler(lockedWriter{w: w, mu: mu}, nil))
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func readFile(dir, name string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, name)) }

package agent

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// receivedEntry is one entry a test receiver accepted.
type receivedEntry struct {
	Labels string
	Tenant string
	TS     time.Time
	Line   string
}

// testReceiver is a minimal Loki push endpoint on loopback that records
// what it accepts. It can answer 503 (down) to simulate an outage.
type testReceiver struct {
	t    testing.TB
	srv  *http.Server
	ln   net.Listener
	addr string

	down     atomic.Bool
	delay    atomic.Int64 // nanoseconds to wait before answering
	requests atomic.Int64
	mu       sync.Mutex
	entries  []receivedEntry
	agents   []string
}

func newTestReceiver(t testing.TB) *testReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &testReceiver{t: t, ln: ln, addr: ln.Addr().String()}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.handle)}
	go func() { _ = r.srv.Serve(ln) }()
	t.Cleanup(func() { _ = r.srv.Close() })
	return r
}

func (r *testReceiver) url() string { return "http://" + r.addr + "/loki/api/v1/push" }

func (r *testReceiver) handle(w http.ResponseWriter, req *http.Request) {
	r.requests.Add(1)
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	if d := r.delay.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	if r.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	streams, err := decodePushRequest(raw)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	r.mu.Lock()
	r.agents = append(r.agents, req.Header.Get("User-Agent"))
	for _, s := range streams {
		for _, e := range s.Entries {
			r.entries = append(r.entries, receivedEntry{Labels: s.Labels, Tenant: req.Header.Get("X-Scope-OrgID"), TS: e.Timestamp, Line: e.Line})
		}
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *testReceiver) received() []receivedEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receivedEntry(nil), r.entries...)
}

func (r *testReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries)
}

// waitCount waits until at least n entries arrived.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func mustRelabel(t testing.TB, yml string) []*relabel.Config {
	t.Helper()
	var out []*relabel.Config
	require.NoError(t, yaml.Unmarshal([]byte(yml), &out))
	for _, c := range out {
		require.NoError(t, c.Validate(model.LegacyValidation))
	}
	return out
}

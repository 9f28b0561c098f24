// Package e2e tests the agent against a real Ledgerlog server started in
// the same process: what the agent ships must be queryable through Loki's
// query API.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/agent"
	"github.com/ledgerlog/ledgerlog/internal/app"
	"github.com/stretchr/testify/require"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startServer runs `ledgerlog server` in-process and waits for /ready.
func startServer(t *testing.T, extra ...string) string {
	t.Helper()
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.RunServer(ctx, append([]string{"-server.http-listen-port=" + strconv.Itoa(port),
			"-server.http-listen-address=127.0.0.1", "-common.path-prefix=" + t.TempDir()}, extra...), io.Discard, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("server did not stop")
		}
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return addr
			}
		}
		select {
		case err := <-done:
			t.Fatalf("server exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("server not ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type queryResult struct {
	Data struct {
		Result []struct {
			Stream map[string]string `json:"stream"`
			Values [][2]string       `json:"values"`
		} `json:"result"`
	} `json:"data"`
}

func queryAll(t *testing.T, addr, selector string, start, end time.Time) map[int64]map[string]string {
	t.Helper()
	return queryTenant(t, addr, "", selector, start, end)
}

// queryTenant runs a range query as tenant (no X-Scope-OrgID when empty).
func queryTenant(t *testing.T, addr, tenant, selector string, start, end time.Time) map[int64]map[string]string {
	t.Helper()
	q := url.Values{"query": {selector}, "limit": {"5000"}, "direction": {"forward"},
		"start": {strconv.FormatInt(start.UnixNano(), 10)}, "end": {strconv.FormatInt(end.UnixNano(), 10)}}
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/loki/api/v1/query_range?"+q.Encode(), nil)
	require.NoError(t, err)
	if tenant != "" {
		req.Header.Set("X-Scope-OrgID", tenant)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, 200, resp.StatusCode, string(body))
	var r queryResult
	require.NoError(t, json.Unmarshal(body, &r))
	out := map[int64]map[string]string{}
	for _, s := range r.Data.Result {
		for _, v := range s.Values {
			ns, err := strconv.ParseInt(v[0], 10, 64)
			require.NoError(t, err)
			if _, dup := out[ns]; dup {
				t.Fatalf("entry at %d returned twice", ns)
			}
			out[ns] = s.Stream
		}
	}
	return out
}

func TestSeedConfigToRealServer(t *testing.T) {
	addr := startServer(t)
	dir := t.TempDir()
	logDir := filepath.Join(dir, "logs")
	require.NoError(t, os.MkdirAll(logDir, 0o755))
	t.Setenv("POSITIONS_DIR", dir)
	t.Setenv("LOKI_ADDR", addr)
	t.Setenv("LOG_DIR", logDir)
	cfg, err := agent.LoadConfig("../testdata/promtail-rust.yaml", true)
	require.NoError(t, err)
	a, err := agent.New(cfg, agent.Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	src, err := os.ReadFile("../testdata/rust-tracing.log")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(src)), "\n")
	want := map[int64]string{}
	var minTS, maxTS time.Time
	for _, l := range lines {
		var v struct{ Timestamp, Level string }
		require.NoError(t, json.Unmarshal([]byte(l), &v))
		ts, err := time.Parse(time.RFC3339Nano, v.Timestamp)
		require.NoError(t, err)
		want[ts.UnixNano()] = v.Level
		if minTS.IsZero() || ts.Before(minTS) {
			minTS = ts
		}
		if ts.After(maxTS) {
			maxTS = ts
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(logDir, "fintech.log"), src, 0o644))

	var got map[int64]map[string]string
	deadline := time.Now().Add(60 * time.Second)
	for {
		got = queryAll(t, addr, `{job="rust-fintech"}`, minTS, maxTS.Add(time.Nanosecond))
		if len(got) >= len(lines) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	require.NoError(t, <-done)
	require.Len(t, got, len(lines), "every line arrives once")
	for ns, stream := range got {
		level, ok := want[ns]
		require.True(t, ok, "timestamp %d comes from a line", ns)
		require.Equal(t, level, stream["level"], fmt.Sprint(stream))
		require.Equal(t, "production", stream["environment"])
	}
	pos, ok := a.Positions().Get(filepath.Join(logDir, "fintech.log"))
	require.True(t, ok)
	require.EqualValues(t, len(src), pos.Offset)
}

// TestTenantStageToAuthServer ships lines whose tenant comes from the
// tenant stage (a JSON field) and from a __tenant_id__ label to a server
// with -auth.enabled: each tenant sees exactly its own lines, and lines
// without a tenant go to the client's tenant_id.
func TestTenantStageToAuthServer(t *testing.T) {
	addr := startServer(t, "-auth.enabled")
	dir := t.TempDir()
	logDir := filepath.Join(dir, "logs")
	require.NoError(t, os.MkdirAll(logDir, 0o755))
	cfgText := `
server: {http_listen_port: 0}
positions: {filename: ` + dir + `/positions.yaml}
clients:
  - url: http://` + addr + `/loki/api/v1/push
    tenant_id: fallback
    batchwait: 100ms
scrape_configs:
  - job_name: tenants
    static_configs:
      - labels: {job: tenants, __path__: "` + logDir + `/*.log"}
    pipeline_stages:
      - json: {expressions: {org: org, n: n}}
      - tenant: {source: org}
      - match:
          selector: '{job="tenants"} |= "\"label\""'
          stages:
            - static_labels: {__tenant_id__: from-label}
`
	cfg, err := agent.ParseConfig([]byte(cfgText), false)
	require.NoError(t, err)
	a, err := agent.New(cfg, agent.Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	want := map[string]int{}
	var b strings.Builder
	start := time.Now().Add(-time.Minute)
	for i := range 60 {
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, `{"org":"team-a","n":%d}`+"\n", i)
			want["team-a"]++
		case 1:
			fmt.Fprintf(&b, `{"org":"team-b","n":%d}`+"\n", i)
			want["team-b"]++
		case 2:
			fmt.Fprintf(&b, `{"n":%d}`+"\n", i)
			want["fallback"]++
		case 3:
			fmt.Fprintf(&b, `{"org":"label","n":%d}`+"\n", i)
			want["from-label"]++
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(logDir, "app.log"), []byte(b.String()), 0o644))
	end := time.Now().Add(time.Minute)
	deadline := time.Now().Add(60 * time.Second)
	for {
		total := 0
		for tenant := range want {
			total += len(queryTenant(t, addr, tenant, `{job="tenants"}`, start, end))
		}
		if total >= 60 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	require.NoError(t, <-done)
	for tenant, n := range want {
		got := queryTenant(t, addr, tenant, `{job="tenants"}`, start, end)
		require.Len(t, got, n, "tenant %s", tenant)
		for _, stream := range got {
			require.NotContains(t, stream, "__tenant_id__")
		}
	}
	require.Empty(t, queryTenant(t, addr, "nobody", `{job="tenants"}`, start, end))
}

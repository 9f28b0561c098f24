package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/app"
	"github.com/stretchr/testify/require"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestRunAgentCheckSyntaxAndErrors(t *testing.T) {
	t.Setenv("POSITIONS_DIR", t.TempDir())
	t.Setenv("LOKI_ADDR", "127.0.0.1:1")
	t.Setenv("LOG_DIR", t.TempDir())
	var out bytes.Buffer
	err := app.RunAgent(context.Background(), []string{"-config.file=../testdata/promtail-rust.yaml", "-config.expand-env=true", "-check-syntax"}, &out, io.Discard)
	require.NoError(t, err)
	require.Contains(t, out.String(), "Valid config file")

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("scrape_configs:\n  - job_name: x\n    pipeline_stages:\n      - geoip: {db: x, source: ip}\n"), 0o644))
	err = app.RunAgent(context.Background(), []string{"-config.file=" + bad, "-check-syntax"}, io.Discard, io.Discard)
	require.ErrorContains(t, err, "not supported")
}

// TestRunAgentEndpoints runs the subcommand with a loki_push_api source in
// dry-run mode and exercises the HTTP endpoints and runtime reload.
func TestRunAgentEndpoints(t *testing.T) {
	dir := t.TempDir()
	port, pushPort := freePort(t), freePort(t)
	cfgPath := filepath.Join(dir, "agent.yaml")
	write := func(extraLabel string) {
		require.NoError(t, os.WriteFile(cfgPath, []byte(`
server:
  http_listen_address: 127.0.0.1
  http_listen_port: `+strconv.Itoa(port)+`
  enable_runtime_reload: true
positions:
  filename: `+dir+`/positions.yaml
scrape_configs:
  - job_name: push
    loki_push_api:
      server:
        http_listen_address: 127.0.0.1
        http_listen_port: `+strconv.Itoa(pushPort)+`
      labels:
        pushed: "`+extraLabel+`"
      use_incoming_timestamp: true
`), 0o644))
	}
	write("one")
	var stdout syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.RunAgent(ctx, []string{"-config.file=" + cfgPath, "-dry-run"}, &stdout, io.Discard)
	}()
	defer func() { cancel(); require.NoError(t, <-done) }()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, _ := get("/ready"); code == 200 {
			break
		}
		require.True(t, time.Now().Before(deadline), "agent not ready")
		time.Sleep(50 * time.Millisecond)
	}
	push := func(line string) {
		body := []byte(`{"streams":[{"stream":{"app":"a"},"values":[["1700000000000000000","` + line + `"]]}]}`)
		resp, err := http.Post("http://127.0.0.1:"+strconv.Itoa(pushPort)+"/loki/api/v1/push", "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusNoContent, resp.StatusCode)
	}
	push("hello-json")
	waitOut := func(s string) {
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(stdout.String(), s) {
			require.True(t, time.Now().Before(deadline), "missing %q in %q", s, stdout.String())
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitOut(`{app="a", pushed="one"}	hello-json`)
	require.Contains(t, stdout.String(), "2023-11-14T22:13:20")

	code, body := get("/metrics")
	require.Equal(t, 200, code)
	require.Contains(t, body, "promtail_files_active_total")
	require.Contains(t, body, "promtail_config_reload_success_total 0")
	code, body = get("/targets?format=json")
	require.Equal(t, 200, code)
	require.Contains(t, body, `"type":"loki_push_api"`)
	code, body = get("/config")
	require.Equal(t, 200, code)
	require.Contains(t, body, "loki_push_api")
	code, _ = get("/service-discovery")
	require.Equal(t, 200, code)

	// runtime reload picks up the changed file
	write("two")
	resp, err := http.Post(base+"/reload", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	deadline = time.Now().Add(10 * time.Second)
	for {
		if c, _ := get("/ready"); c == 200 {
			break
		}
		require.True(t, time.Now().Before(deadline))
		time.Sleep(20 * time.Millisecond)
	}
	push("after-reload")
	waitOut(`{app="a", pushed="two"}	after-reload`)
	_, body = get("/metrics")
	require.Contains(t, body, "promtail_config_reload_success_total 1")
}

// TestRunAgentPrintsPipelineWarnings checks that -check-syntax and -inspect
// name the keys the seed Rust config reads at top level while tracing JSON
// nests them under fields.
func TestRunAgentPrintsPipelineWarnings(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("POSITIONS_DIR", dir)
	t.Setenv("LOKI_ADDR", "127.0.0.1:1")
	t.Setenv("LOG_DIR", dir)
	args := []string{"-config.file=../testdata/promtail-rust.yaml", "-config.expand-env=true"}
	wantWarnings := func(stderr string) {
		t.Helper()
		for _, key := range []string{"message", "event"} {
			require.Contains(t, stderr, `warning: scrape config rust-fintech-app: stage 1 (json): JMESPath "`+key+`" for key "`+key+`" reads the top-level field only`)
			require.Contains(t, stderr, "write "+key+": fields."+key)
		}
		require.Contains(t, stderr, "read by stage 4 (template)")
		require.Contains(t, stderr, "read by stage 2 (labels)")
	}

	var out, errOut bytes.Buffer
	require.NoError(t, app.RunAgent(context.Background(), append(args, "-check-syntax"), &out, &errOut))
	require.Equal(t, "Valid config file! No syntax issues found\n", out.String())
	wantWarnings(errOut.String())

	// -inspect (with -dry-run) prints them before it shows the stages at
	// work on a tracing line
	line := `{"timestamp":"2026-11-25T00:00:00.123456Z","level":"INFO","fields":{"message":"payment processed","event":"payment_processed"},"target":"payments","span":{"name":"process_payment"}}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app.log"), []byte(line+"\n"), 0o644))
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.RunAgent(ctx, append(args, "-dry-run", "-inspect", "-server.http-listen-port=0"), &stdout, &stderr)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stdout.String(), "<no value>") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	require.NoError(t, <-done)
	require.Contains(t, stdout.String(), "<no value>", "the seed config replaces every line with the template's missing key")
	wantWarnings(stderr.String())
	require.Contains(t, stderr.String(), "[inspect: json stage]")
}

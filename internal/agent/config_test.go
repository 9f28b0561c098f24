package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSeedConfigLoadsUnchanged(t *testing.T) {
	data, err := os.ReadFile("testdata/promtail-rust.yaml")
	require.NoError(t, err)
	t.Setenv("POSITIONS_DIR", "/tmp/p")
	t.Setenv("LOKI_ADDR", "loki:3100")
	t.Setenv("LOG_DIR", "/var/log/fintech")
	cfg, err := ParseConfig(data, true)
	require.NoError(t, err)
	require.Equal(t, "/tmp/p/positions.yaml", cfg.Positions.Filename)
	require.Len(t, cfg.Clients, 1)
	require.Equal(t, "http://loki:3100/loki/api/v1/push", cfg.Clients[0].URL)
	require.Equal(t, time.Second, cfg.Clients[0].BatchWait.D())
	require.EqualValues(t, 1<<20, cfg.Clients[0].BatchSize)
	require.Equal(t, 10, cfg.Clients[0].BackoffConfig.MaxRetries)
	require.Equal(t, 500*time.Millisecond, cfg.Clients[0].BackoffConfig.MinPeriod.D())
	require.Equal(t, 5*time.Minute, cfg.Clients[0].BackoffConfig.MaxPeriod.D())
	sc := cfg.ScrapeConfigs[0]
	require.Equal(t, "rust-fintech-app", sc.JobName)
	require.Equal(t, "/var/log/fintech/*.log", sc.StaticConfigs[0].Labels["__path__"])
	require.Len(t, sc.PipelineStages, 5)
}

func TestConfigErrors(t *testing.T) {
	f := func(yml, want string) {
		t.Helper()
		_, err := ParseConfig([]byte(yml), false)
		require.Error(t, err)
		require.Contains(t, err.Error(), want)
	}
	f("clients:\n  - url: http://x\n    batchwiat: 1s\n", "line 3: field batchwiat not found")
	f("server:\n  http_listen_prot: 1\n", "line 2: field http_listen_prot not found")
	f("scrape_configs:\n  - job_name: k\n    kubernetes_sd_configs:\n      - role: pod\n", "not supported: kubernetes_sd_configs")
	f("scrape_configs:\n  - job_name: j\n    journal:\n      max_age: 7h\n", "not supported: journal")
	f("scrape_configs:\n  - job_name: g\n    gelf: {}\n", "not supported: gelf")
	f("scrape_configs:\n  - job_name: a\n  - job_name: a\n", "duplicate job_name")
	f("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: hashmod\n        target_label: x\n", "modulus")
	f("clients:\n  - url: http://x\n    basic_auth: {username: u, password: p}\n    bearer_token: t\n", "at most one")
	f("scrape_configs:\n  - job_name: a\n    encoding: UTF-16\n", "not supported")
	_, err := ParseConfig([]byte("scrape_configs:\n  - job_name: k\n    consul_sd_configs: []\n"), false)
	require.True(t, errors.Is(err, ErrNotSupported))
}

func TestConfigPromtailClientBlock(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
client:
  url: https://logs.example/loki/api/v1/push
  tenant_id: bank
  basic_auth:
    username: u
    password: hunter2
  tls_config:
    insecure_skip_verify: true
  external_labels:
    dc: eu1
  drop_rate_limited_batches: true
  timeout: 5s
limits_config:
  max_line_size: 256KB
  max_line_size_truncate: true
options:
  stream_lag_labels: "filename,job"
`), false)
	require.NoError(t, err)
	require.Len(t, cfg.Clients, 1)
	c := cfg.Clients[0]
	require.Equal(t, "bank", c.TenantID)
	require.Equal(t, "u", c.HTTPClientConfig.BasicAuth.Username)
	require.True(t, c.HTTPClientConfig.TLSConfig.InsecureSkipVerify)
	require.Equal(t, 5*time.Second, c.Timeout.D())
	require.EqualValues(t, 256<<10, cfg.LimitsConfig.MaxLineSize)
	require.Equal(t, []string{"filename", "job"}, nodeStrings(cfg.Options.StreamLagLabels))
	require.NotContains(t, cfg.String(), "hunter2", "secrets are masked in /config")
}

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"HOST": "h1", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	f := func(in, want string) {
		t.Helper()
		require.Equal(t, want, ExpandEnv(in, lookup))
	}
	f("a ${HOST} b", "a h1 b")
	f("${MISSING:-def}", "def")
	f("${EMPTY:-def}", "def")
	f("${EMPTY-def}", "")
	f("${MISSING-def}", "def")
	f("$HOST/x", "h1/x")
	f("replacement: $1", "replacement: $1")
	f("cost: $$5", "cost: $5")
	f("${UNCLOSED", "${UNCLOSED")
	f("$", "$")
}

func TestPositionsPromtailCompatible(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "positions.yaml")
	// a file written by Promtail
	require.NoError(t, os.WriteFile(path, []byte("positions:\n  /var/log/a.log: \"1234\"\n  journal-sys: \"s=abc;i=1\"\n"), 0o644))
	p, err := OpenPositions(PositionsConfig{Filename: path, SyncPeriod: 0}, discardLogger())
	require.NoError(t, err)
	pos, ok := p.Get("/var/log/a.log")
	require.True(t, ok)
	require.EqualValues(t, 1234, pos.Offset)
	require.True(t, pos.ID.IsZero())
	p.Put("/var/log/b.log", Position{Offset: 7, ID: FileID{Dev: 1, Ino: 2, FP: "ab", FPLen: 3}})
	require.NoError(t, p.Sync())
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(data), "journal-sys: s=abc;i=1")
	require.True(t, strings.HasPrefix(string(data), "positions:\n"))
	// read back as Promtail would: only the positions map matters
	p2, err := OpenPositions(PositionsConfig{Filename: path}, discardLogger())
	require.NoError(t, err)
	pos, _ = p2.Get("/var/log/b.log")
	require.Equal(t, Position{Offset: 7, ID: FileID{Dev: 1, Ino: 2, FP: "ab", FPLen: 3}}, pos)

	require.NoError(t, os.WriteFile(path, []byte("positions: [broken"), 0o644))
	_, err = OpenPositions(PositionsConfig{Filename: path}, discardLogger())
	require.Error(t, err)
	_, err = OpenPositions(PositionsConfig{Filename: path, IgnoreInvalidYaml: true}, discardLogger())
	require.NoError(t, err)
}

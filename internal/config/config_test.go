package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDefaults(t *testing.T) {
	l, err := Parse("server", nil, os.Stderr)
	require.NoError(t, err)
	c := l.Config
	require.Equal(t, "127.0.0.1", c.Server.HTTPListenAddress)
	require.Equal(t, 3100, c.Server.HTTPListenPort)
	require.False(t, c.AuthEnabled)
	require.Equal(t, "./data", c.Common.PathPrefix)
	require.Equal(t, filepath.Join("data", "wal"), c.WALDir())
	require.True(t, c.Ingester.WAL.Sync)
	require.Equal(t, "zstd", c.Ingester.ChunkEncoding)
	require.Equal(t, 5000, c.Limits.MaxEntriesLimitPerQuery)
}

func TestLokiReferenceConfigLoadsWithNamedWarnings(t *testing.T) {
	path := "../../../shared/bench/loki-reference-config.yaml"
	if _, err := os.Stat(path); err != nil {
		t.Skipf("reference config not present: %v", err)
	}
	l, err := Parse("server", []string{"-config.file", path}, os.Stderr)
	require.NoError(t, err)
	require.Equal(t, "./loki-data", l.Config.Common.PathPrefix)
	require.Equal(t, "./loki-data/chunks", l.Config.BlocksDir())
	require.Equal(t, 1024.0, l.Config.Limits.IngestionRateMB)
	require.Equal(t, 5*time.Minute, l.Config.Limits.QueryTimeout.D())
	require.False(t, l.Config.Limits.RejectOldSamples)
	require.Equal(t, "./loki-data/rules", l.Config.Ruler.RuleDir(l.Config.RulerStorage, l.Config.Common.PathPrefix))
	joined := strings.Join(l.Warnings, "\n")
	for _, key := range []string{"schema_config", "server.grpc_listen_port", "common.ring", "query_range", "analytics", "common.replication_factor"} {
		require.Contains(t, joined, "config key "+key+" ", key)
	}
}

func TestUnknownKeyIsError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte("server:\n  http_listen_prot: 1\n"), 0o644))
	_, err := Parse("server", []string{"-config.file", path}, os.Stderr)
	require.Error(t, err)
	require.Contains(t, err.Error(), "http_listen_prot")
}

func TestFlagsOverrideFileAndExpandEnv(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte("server:\n  http_listen_port: ${LL_PORT:-4100}\ncommon:\n  path_prefix: ${LL_DIR}\n"), 0o644))
	t.Setenv("LL_DIR", "/tmp/x")
	l, err := Parse("server", []string{"-config.file", path, "-config.expand-env"}, os.Stderr)
	require.NoError(t, err)
	require.Equal(t, 4100, l.Config.Server.HTTPListenPort)
	require.Equal(t, "/tmp/x", l.Config.Common.PathPrefix)

	l, err = Parse("server", []string{"-config.file", path, "-config.expand-env", "-server.http-listen-port", "5100"}, os.Stderr)
	require.NoError(t, err)
	require.Equal(t, 5100, l.Config.Server.HTTPListenPort)
}

func TestPrint(t *testing.T) {
	l, err := Parse("server", nil, os.Stderr)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, Print(&buf, &l.Config))
	require.Contains(t, buf.String(), "http_listen_port: 3100")
	require.Contains(t, buf.String(), "max_line_size: 256KB")
}

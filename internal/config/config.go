// Package config owns the server's top-level configuration: the YAML file
// (Loki's key names where the meaning is the same), -config.expand-env
// substitution, strict decoding with named warnings for Loki keys that are
// knowingly not used, command-line flags that override the file, and the
// printable effective configuration with secrets masked.
package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ledgerlog/ledgerlog/internal/compactor"
	"github.com/ledgerlog/ledgerlog/internal/ruler"
	"github.com/ledgerlog/ledgerlog/internal/tenant"
	"github.com/ledgerlog/ledgerlog/internal/units"
)

// Config is the whole server configuration.
type Config struct {
	Target        string              `yaml:"target"`
	AuthEnabled   bool                `yaml:"auth_enabled"`
	Server        ServerConfig        `yaml:"server"`
	Common        CommonConfig        `yaml:"common"`
	Ingester      IngesterConfig      `yaml:"ingester"`
	StorageConfig StorageConfig       `yaml:"storage_config"`
	Compactor     compactor.Config    `yaml:"compactor"`
	Limits        tenant.Limits       `yaml:"limits_config"`
	RuntimeConfig RuntimeConfig       `yaml:"runtime_config"`
	Distributor   DistributorConfig   `yaml:"distributor"`
	Ruler         ruler.Config        `yaml:"ruler"`
	RulerStorage  ruler.BackendConfig `yaml:"ruler_storage"`
}

// ServerConfig is the HTTP server, with Loki's keys.
type ServerConfig struct {
	HTTPListenAddress string         `yaml:"http_listen_address"`
	HTTPListenPort    int            `yaml:"http_listen_port"`
	ReadTimeout       units.Duration `yaml:"http_server_read_timeout"`
	WriteTimeout      units.Duration `yaml:"http_server_write_timeout"`
	IdleTimeout       units.Duration `yaml:"http_server_idle_timeout"`
	LogLevel          string         `yaml:"log_level"`
	LogFormat         string         `yaml:"log_format"`
	MaxPushBodySize   units.ByteSize `yaml:"max_push_body_size"`
}

// CommonConfig holds settings shared by components.
type CommonConfig struct {
	PathPrefix string `yaml:"path_prefix"`
}

// IngesterConfig controls the head, chunk cutting and the write-ahead log.
type IngesterConfig struct {
	ChunkIdlePeriod  units.Duration `yaml:"chunk_idle_period"`
	MaxChunkAge      units.Duration `yaml:"max_chunk_age"`
	ChunkTargetSize  units.ByteSize `yaml:"chunk_target_size"`
	ChunkBlockSize   units.ByteSize `yaml:"chunk_block_size"`
	ChunkEncoding    string         `yaml:"chunk_encoding"`
	FlushCheckPeriod units.Duration `yaml:"flush_check_period"`
	FlushOpTimeout   units.Duration `yaml:"flush_op_timeout"`
	BlockWindow      units.Duration `yaml:"block_window"`
	MaxHeadBytes     units.ByteSize `yaml:"max_head_bytes"`
	WAL              WALConfig      `yaml:"wal"`
}

// WALConfig is the write-ahead log. Sync (durable acknowledgements) is on by
// default; turning it off trades the last second of acknowledged data on a
// machine crash for throughput.
type WALConfig struct {
	Enabled             bool           `yaml:"enabled"`
	Dir                 string         `yaml:"dir"`
	CheckpointDuration  units.Duration `yaml:"checkpoint_duration"`
	FlushOnShutdown     bool           `yaml:"flush_on_shutdown"`
	Sync                bool           `yaml:"sync"`
	SegmentSize         units.ByteSize `yaml:"segment_size"`
	ReplayMemoryCeiling units.ByteSize `yaml:"replay_memory_ceiling"`
}

// StorageConfig selects the object store blocks are written to. Only the
// filesystem provider is built in; the layout is provider-independent.
type StorageConfig struct {
	ObjectStore ObjectStoreConfig `yaml:"object_store"`
}

// ObjectStoreConfig mirrors Loki's storage_config.object_store.
type ObjectStoreConfig struct {
	Filesystem FilesystemConfig `yaml:"filesystem"`
}

// FilesystemConfig is the filesystem object store.
type FilesystemConfig struct {
	Dir string `yaml:"dir"`
}

// RuntimeConfig is the per-tenant overrides file, reloaded periodically.
type RuntimeConfig struct {
	File   string         `yaml:"file"`
	Period units.Duration `yaml:"period"`
}

// DistributorConfig is accepted for Loki compatibility.
type DistributorConfig struct {
	OTLPConfig yaml.Node `yaml:"otlp_config,omitempty"`
}

// RegisterFlags sets every default and binds flags named after YAML paths.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.Target, "target", "all", "Component to run; only the single binary ('all') exists.")
	f.BoolVar(&c.AuthEnabled, "auth.enabled", false, "Require X-Scope-OrgID on every request (multi-tenant mode).")
	f.StringVar(&c.Server.HTTPListenAddress, "server.http-listen-address", "127.0.0.1", "HTTP listen address.")
	f.IntVar(&c.Server.HTTPListenPort, "server.http-listen-port", 3100, "HTTP listen port.")
	c.Server.ReadTimeout = units.Duration(5 * time.Minute)
	f.Var(&c.Server.ReadTimeout, "server.http-read-timeout", "HTTP read timeout.")
	c.Server.WriteTimeout = units.Duration(10 * time.Minute)
	f.Var(&c.Server.WriteTimeout, "server.http-write-timeout", "HTTP write timeout (Loki's 30s default causes 502s on long queries).")
	c.Server.IdleTimeout = units.Duration(2 * time.Minute)
	f.Var(&c.Server.IdleTimeout, "server.http-idle-timeout", "HTTP idle timeout.")
	f.StringVar(&c.Server.LogLevel, "log.level", "info", "Log level: debug, info, warn, error.")
	f.StringVar(&c.Server.LogFormat, "log.format", "logfmt", "Log format: logfmt or json.")
	c.Server.MaxPushBodySize = 100 << 20
	f.Var(&c.Server.MaxPushBodySize, "server.max-push-body-size", "Largest accepted push body (wire and decompressed).")
	f.StringVar(&c.Common.PathPrefix, "common.path-prefix", "./data", "Directory under which all data lives.")

	c.Ingester.ChunkIdlePeriod = units.Duration(30 * time.Minute)
	f.Var(&c.Ingester.ChunkIdlePeriod, "ingester.chunks-idle-period", "Cut a stream's chunk after this long without writes.")
	c.Ingester.MaxChunkAge = units.Duration(2 * time.Hour)
	f.Var(&c.Ingester.MaxChunkAge, "ingester.max-chunk-age", "Cut a chunk at this age; half of it is the out-of-order window.")
	c.Ingester.ChunkTargetSize = 1572864
	f.Var(&c.Ingester.ChunkTargetSize, "ingester.chunk-target-size", "Compressed size at which a chunk is cut.")
	c.Ingester.ChunkBlockSize = 262144
	f.Var(&c.Ingester.ChunkBlockSize, "ingester.chunks-block-size", "Uncompressed size of a chunk page.")
	f.StringVar(&c.Ingester.ChunkEncoding, "ingester.chunk-encoding", "zstd", "Chunk compression: zstd, snappy, lz4, gzip, none.")
	c.Ingester.FlushCheckPeriod = units.Duration(30 * time.Second)
	f.Var(&c.Ingester.FlushCheckPeriod, "ingester.flush-check-period", "How often the head is checked for chunks to cut and flush.")
	c.Ingester.FlushOpTimeout = units.Duration(10 * time.Minute)
	f.Var(&c.Ingester.FlushOpTimeout, "ingester.flush-op-timeout", "Timeout of one block flush.")
	c.Ingester.BlockWindow = units.Duration(2 * time.Hour)
	f.Var(&c.Ingester.BlockWindow, "ingester.block-window", "Time window of a block.")
	c.Ingester.MaxHeadBytes = 16 << 20
	f.Var(&c.Ingester.MaxHeadBytes, "ingester.max-head-bytes", "Compressed head size that triggers a flush to a block.")
	f.BoolVar(&c.Ingester.WAL.Enabled, "ingester.wal-enabled", true, "Write-ahead log; disabling it loses unflushed data on a crash.")
	f.StringVar(&c.Ingester.WAL.Dir, "ingester.wal-dir", "", "WAL directory (default <path_prefix>/wal).")
	c.Ingester.WAL.CheckpointDuration = units.Duration(5 * time.Minute)
	f.Var(&c.Ingester.WAL.CheckpointDuration, "ingester.checkpoint-duration", "Interval between WAL checkpoints.")
	f.BoolVar(&c.Ingester.WAL.FlushOnShutdown, "ingester.flush-on-shutdown", true, "Flush the head to a block on shutdown.")
	f.BoolVar(&c.Ingester.WAL.Sync, "ingester.wal-sync", true, "Acknowledge pushes only after fsync (durable).")
	c.Ingester.WAL.SegmentSize = 128 << 20
	f.Var(&c.Ingester.WAL.SegmentSize, "ingester.wal-segment-size", "WAL segment size.")
	f.Var(&c.Ingester.WAL.ReplayMemoryCeiling, "ingester.wal-replay-memory-ceiling", "Accepted for compatibility.")
	f.StringVar(&c.StorageConfig.ObjectStore.Filesystem.Dir, "object-store.filesystem.dir", "", "Block store directory (default <path_prefix>/blocks).")

	c.Compactor.RegisterFlags(f)

	f.StringVar(&c.RuntimeConfig.File, "runtime-config.file", "", "Per-tenant overrides file.")
	c.RuntimeConfig.Period = units.Duration(10 * time.Second)
	f.Var(&c.RuntimeConfig.Period, "runtime-config.reload-period", "Reload period of the overrides file.")

	c.Limits.RegisterFlags(f)
	c.Ruler.RegisterFlags(f)
	c.RulerStorage.RegisterFlags(f)
}

// Validate checks values that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.Target != "all" && c.Target != "" {
		errs = append(errs, fmt.Errorf("target %q: only the single binary target 'all' is supported", c.Target))
	}
	if c.Server.HTTPListenPort < 0 || c.Server.HTTPListenPort > 65535 {
		errs = append(errs, fmt.Errorf("server.http_listen_port %d out of range", c.Server.HTTPListenPort))
	}
	if c.Ingester.ChunkBlockSize <= 0 {
		errs = append(errs, errors.New("ingester.chunk_block_size must be positive"))
	}
	if c.Ingester.ChunkTargetSize <= 0 {
		errs = append(errs, errors.New("ingester.chunk_target_size must be positive"))
	}
	if c.Ingester.MaxChunkAge <= 0 {
		errs = append(errs, errors.New("ingester.max_chunk_age must be positive"))
	}
	if c.Ingester.BlockWindow.D() < time.Minute {
		errs = append(errs, errors.New("ingester.block_window must be at least 1m"))
	}
	if c.Limits.IngestionRateMB < 0 || c.Limits.IngestionBurstSizeMB < 0 {
		errs = append(errs, errors.New("limits_config.ingestion_rate_mb and ingestion_burst_size_mb must not be negative"))
	}
	errs = append(errs, c.Ruler.Validate(), c.RulerStorage.Validate())
	return errors.Join(errs...)
}

// WALDir is the effective WAL directory.
func (c *Config) WALDir() string {
	if c.Ingester.WAL.Dir != "" {
		return c.Ingester.WAL.Dir
	}
	return filepath.Join(c.Common.PathPrefix, "wal")
}

// BlocksDir is the effective filesystem object-store directory.
func (c *Config) BlocksDir() string {
	if c.StorageConfig.ObjectStore.Filesystem.Dir != "" {
		return c.StorageConfig.ObjectStore.Filesystem.Dir
	}
	return filepath.Join(c.Common.PathPrefix, "blocks")
}

// CompactorDir is the effective compactor working directory.
func (c *Config) CompactorDir() string {
	if c.Compactor.WorkingDirectory != "" {
		return c.Compactor.WorkingDirectory
	}
	return filepath.Join(c.Common.PathPrefix, "compactor")
}

// Load is the result of reading flags and a config file.
type Load struct {
	Config      Config
	Warnings    []string // one per Loki key that is knowingly not used
	PrintConfig bool
	ConfigFile  string
}

// Parse reads args (flags, -config.file, -config.expand-env) into a Config.
// Precedence: defaults < file < flags given on the command line.
func Parse(name string, args []string, stderr io.Writer) (*Load, error) {
	var l Load
	first := flag.NewFlagSet(name, flag.ContinueOnError)
	first.SetOutput(io.Discard)
	file := first.String("config.file", "", "")
	expand := first.Bool("config.expand-env", false, "")
	first.Bool("print-config", false, "")
	var scratch Config
	scratch.RegisterFlags(first)
	if err := first.Parse(args); err != nil {
		// Parse again with output on, so the user sees the usage text.
		return nil, newFlagSet(name, &Load{}, stderr).Parse(args)
	}
	if first.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", first.Arg(0))
	}
	fs := newFlagSet(name, &l, stderr) // binds to l.Config and sets the defaults
	if *file != "" {
		b, err := os.ReadFile(*file)
		if err != nil {
			return nil, fmt.Errorf("read config file: %w", err)
		}
		if *expand {
			b = []byte(ExpandEnv(string(b)))
		}
		warnings, err := decodeStrict(b, &l.Config)
		if err != nil {
			return nil, fmt.Errorf("config file %s: %w", *file, err)
		}
		l.Warnings = warnings
		l.ConfigFile = *file
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if l.Config.Limits.ShardStreams.Enabled {
		l.Warnings = append(l.Warnings, "limits_config.shard_streams.enabled: ignored: Ledgerlog never shards streams, so results do not depend on ingest timing")
	}
	if err := l.Config.Validate(); err != nil {
		return nil, err
	}
	return &l, nil
}

func newFlagSet(name string, l *Load, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config.file", "", "YAML configuration file (Loki's keys).")
	fs.Bool("config.expand-env", false, "Expand ${VAR} and ${VAR:-default} in the config file.")
	fs.BoolVar(&l.PrintConfig, "print-config", false, "Print the effective configuration and exit.")
	l.Config.RegisterFlags(fs)
	return fs
}

// ExpandEnv replaces ${VAR}, ${VAR:-default} and $VAR with environment
// values, as Loki's -config.expand-env does. `$$` is a literal dollar.
func ExpandEnv(s string) string {
	s = strings.ReplaceAll(s, "$$", "\x00")
	s = os.Expand(s, func(key string) string {
		if i := strings.Index(key, ":-"); i >= 0 {
			if v, ok := os.LookupEnv(key[:i]); ok && v != "" {
				return v
			}
			return key[i+2:]
		}
		return os.Getenv(key)
	})
	return strings.ReplaceAll(s, "\x00", "$")
}

// Print writes the effective configuration as YAML.
func Print(w io.Writer, c *Config) error {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

package compactor

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/storage/chunk"
	"github.com/ledgerlog/ledgerlog/internal/units"
)

// Config configures the compactor. Keys are Loki's (compactor section)
// where Loki has the same knob; RegisterFlags is the single source of
// defaults.
type Config struct {
	// WorkingDirectory holds chunk segments of blocks being built. Empty
	// means they are built in memory.
	WorkingDirectory string `yaml:"working_directory"`
	// CompactionInterval is the pause between runs.
	CompactionInterval units.Duration `yaml:"compaction_interval"`
	// ApplyRetentionInterval is the pause between retention passes; 0
	// applies retention on every run.
	ApplyRetentionInterval units.Duration `yaml:"apply_retention_interval"`
	// RetentionEnabled turns on deleting data older than the tenant's
	// retention_period.
	RetentionEnabled bool `yaml:"retention_enabled"`
	// RetentionDeleteDelay is how long a block marked by retention stays
	// readable by queries that already opened it before it is deleted.
	RetentionDeleteDelay units.Duration `yaml:"retention_delete_delay"`
	// DeletionDelay is the same delay for blocks replaced by compaction.
	DeletionDelay units.Duration `yaml:"deletion_delay"`
	// ChunkEncoding and ChunkTargetSize shape the chunks of compacted
	// blocks (Loki's ingester keys of the same names).
	ChunkEncoding   string         `yaml:"chunk_encoding"`
	ChunkTargetSize units.ByteSize `yaml:"chunk_target_size"`
	// SmallBlockMergeRange is the epoch-aligned range within which blocks
	// of different windows are merged into one when together they are at
	// most SmallBlockMaxSize compressed bytes; 0 disables such merges.
	SmallBlockMergeRange units.Duration `yaml:"small_block_merge_range"`
	SmallBlockMaxSize    units.ByteSize `yaml:"small_block_max_size"`
}

// RegisterFlags registers the flags and sets the defaults.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.WorkingDirectory, "compactor.working-directory", "", "Directory for blocks being built; empty builds them in memory.")
	c.CompactionInterval = units.Duration(10 * time.Minute)
	f.Var(&c.CompactionInterval, "compactor.compaction-interval", "Interval between compaction runs.")
	c.ApplyRetentionInterval = 0
	f.Var(&c.ApplyRetentionInterval, "compactor.apply-retention-interval", "Interval between retention passes; 0 applies retention on every run.")
	f.BoolVar(&c.RetentionEnabled, "compactor.retention-enabled", false, "Delete data older than the tenant's retention_period.")
	c.RetentionDeleteDelay = units.Duration(2 * time.Hour)
	f.Var(&c.RetentionDeleteDelay, "compactor.retention-delete-delay", "Delay before blocks marked by retention are deleted.")
	c.DeletionDelay = units.Duration(2 * time.Hour)
	f.Var(&c.DeletionDelay, "compactor.deletion-delay", "Delay before blocks replaced by compaction are deleted.")
	f.StringVar(&c.ChunkEncoding, "compactor.chunk-encoding", chunk.DefaultEncoding.String(), "Compression of compacted chunks: none, gzip, snappy, lz4, zstd.")
	c.ChunkTargetSize = 1536 << 10
	f.Var(&c.ChunkTargetSize, "compactor.chunk-target-size", "Target compressed size of compacted chunks.")
	c.SmallBlockMergeRange = units.Duration(24 * time.Hour)
	f.Var(&c.SmallBlockMergeRange, "compactor.small-block-merge-range", "Range within which small blocks of different windows are merged; 0 disables.")
	c.SmallBlockMaxSize = 64 << 20
	f.Var(&c.SmallBlockMaxSize, "compactor.small-block-max-size", "Largest total compressed size of small blocks merged across windows.")
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	var c Config
	c.RegisterFlags(flag.NewFlagSet("", flag.ContinueOnError))
	return c
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.CompactionInterval <= 0 {
		errs = append(errs, errors.New("compactor.compaction_interval must be positive"))
	}
	if c.ApplyRetentionInterval < 0 {
		errs = append(errs, errors.New("compactor.apply_retention_interval must not be negative"))
	}
	if c.RetentionDeleteDelay < 0 || c.DeletionDelay < 0 {
		errs = append(errs, errors.New("compactor.retention_delete_delay and deletion_delay must not be negative"))
	}
	if _, err := chunk.ParseEncoding(c.ChunkEncoding); err != nil {
		errs = append(errs, fmt.Errorf("compactor.chunk_encoding: %w", err))
	}
	if c.ChunkTargetSize <= 0 {
		errs = append(errs, errors.New("compactor.chunk_target_size must be positive"))
	}
	if c.SmallBlockMergeRange < 0 || c.SmallBlockMaxSize < 0 {
		errs = append(errs, errors.New("compactor.small_block_merge_range and small_block_max_size must not be negative"))
	}
	return errors.Join(errs...)
}

// Package tenant owns per-tenant identity and limits: the Limits struct with
// Loki's key names and defaults, the runtime overrides file that changes them
// per tenant without a restart, and X-Scope-OrgID resolution.
package tenant

import (
	"flag"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/units"
)

// Limits are the per-tenant limits. YAML keys and defaults are Loki's
// (limits_config); RegisterFlags is the single source of defaults.
type Limits struct {
	// Ingest.
	IngestionRateMB              float64        `yaml:"ingestion_rate_mb"`
	IngestionBurstSizeMB         float64        `yaml:"ingestion_burst_size_mb"`
	PerStreamRateLimit           units.ByteSize `yaml:"per_stream_rate_limit"`
	PerStreamRateLimitBurst      units.ByteSize `yaml:"per_stream_rate_limit_burst"`
	MaxLineSize                  units.ByteSize `yaml:"max_line_size"`
	MaxLineSizeTruncate          bool           `yaml:"max_line_size_truncate"`
	MaxLabelNamesPerSeries       int            `yaml:"max_label_names_per_series"`
	MaxLabelNameLength           int            `yaml:"max_label_name_length"`
	MaxLabelValueLength          int            `yaml:"max_label_value_length"`
	MaxGlobalStreamsPerUser      int            `yaml:"max_global_streams_per_user"`
	MaxStreamsPerUser            int            `yaml:"max_streams_per_user"`
	RejectOldSamples             bool           `yaml:"reject_old_samples"`
	RejectOldSamplesMaxAge       units.Duration `yaml:"reject_old_samples_max_age"`
	CreationGracePeriod          units.Duration `yaml:"creation_grace_period"`
	UnorderedWrites              bool           `yaml:"unordered_writes"`
	AllowStructuredMetadata      bool           `yaml:"allow_structured_metadata"`
	MaxStructuredMetadataSize    units.ByteSize `yaml:"max_structured_metadata_size"`
	MaxStructuredMetadataEntries int            `yaml:"max_structured_metadata_entries_count"`
	DiscoverServiceName          []string       `yaml:"discover_service_name"`
	DiscoverLogLevels            bool           `yaml:"discover_log_levels"`
	LogLevelFields               []string       `yaml:"log_level_fields"`
	ShardStreams                 ShardStreams   `yaml:"shard_streams"`

	// Query.
	MaxEntriesLimitPerQuery int            `yaml:"max_entries_limit_per_query"`
	MaxQueryLength          units.Duration `yaml:"max_query_length"`
	MaxQueryLookback        units.Duration `yaml:"max_query_lookback"`
	MaxQueryRange           units.Duration `yaml:"max_query_range"`
	MaxQuerySeries          int            `yaml:"max_query_series"`
	MaxQueryParallelism     int            `yaml:"max_query_parallelism"`
	MaxQueryBytesRead       units.ByteSize `yaml:"max_query_bytes_read"`
	QueryTimeout            units.Duration `yaml:"query_timeout"`
	SplitQueriesByInterval  units.Duration `yaml:"split_queries_by_interval"`
	RequireSelectiveMatcher bool           `yaml:"require_selective_matcher"`
	VolumeEnabled           bool           `yaml:"volume_enabled"`
	VolumeMaxSeries         int            `yaml:"volume_max_series"`

	// Retention.
	RetentionPeriod units.Duration `yaml:"retention_period"`
}

// ShardStreams is accepted for compatibility with Loki configs. Ledgerlog
// never shards streams (results do not depend on ingest timing), so only
// `enabled: false` is meaningful; `enabled: true` draws a warning.
type ShardStreams struct {
	Enabled        bool           `yaml:"enabled"`
	DesiredRate    units.ByteSize `yaml:"desired_rate,omitempty"`
	LoggingEnabled bool           `yaml:"logging_enabled,omitempty"`
}

// DefaultServiceNameLabels are Loki's discover_service_name defaults.
var DefaultServiceNameLabels = []string{
	"service", "app", "application", "app_name", "name", "app_kubernetes_io_name",
	"container", "container_name", "k8s_container_name", "component", "workload", "job",
	"k8s_job_name",
}

// DefaultLogLevelFields are Loki's log_level_fields defaults.
var DefaultLogLevelFields = []string{"level", "LEVEL", "Level", "Severity", "severity", "SEVERITY", "lvl", "LVL", "Lvl", "severity_text", "Severity_Text", "SEVERITY_TEXT"}

// RegisterFlags registers the limits under prefix "validation." style names
// and sets Loki's defaults.
func (l *Limits) RegisterFlags(f *flag.FlagSet) {
	f.Float64Var(&l.IngestionRateMB, "distributor.ingestion-rate-limit-mb", 4, "Per-tenant ingestion rate limit in MB/s.")
	f.Float64Var(&l.IngestionBurstSizeMB, "distributor.ingestion-burst-size-mb", 6, "Per-tenant ingestion burst size in MB.")
	l.PerStreamRateLimit = 3 << 20
	f.Var(&l.PerStreamRateLimit, "ingester.per-stream-rate-limit", "Per-stream rate limit in bytes/s.")
	l.PerStreamRateLimitBurst = 15 << 20
	f.Var(&l.PerStreamRateLimitBurst, "ingester.per-stream-rate-limit-burst", "Per-stream burst in bytes.")
	l.MaxLineSize = 256 << 10
	f.Var(&l.MaxLineSize, "distributor.max-line-size", "Maximum line size; 0 disables the check.")
	f.BoolVar(&l.MaxLineSizeTruncate, "distributor.max-line-size-truncate", false, "Truncate over-long lines instead of rejecting them.")
	f.IntVar(&l.MaxLabelNamesPerSeries, "validation.max-label-names-per-series", 15, "Maximum label names per stream.")
	f.IntVar(&l.MaxLabelNameLength, "validation.max-length-label-name", 1024, "Maximum label name length.")
	f.IntVar(&l.MaxLabelValueLength, "validation.max-length-label-value", 2048, "Maximum label value length.")
	f.IntVar(&l.MaxGlobalStreamsPerUser, "ingester.max-global-streams-per-user", 5000, "Maximum active streams per tenant; 0 disables.")
	f.IntVar(&l.MaxStreamsPerUser, "ingester.max-streams-per-user", 0, "Accepted for compatibility; the global limit applies.")
	f.BoolVar(&l.RejectOldSamples, "validation.reject-old-samples", true, "Reject entries older than reject_old_samples_max_age.")
	l.RejectOldSamplesMaxAge = units.Duration(7 * 24 * time.Hour)
	f.Var(&l.RejectOldSamplesMaxAge, "validation.reject-old-samples.max-age", "Maximum accepted entry age.")
	l.CreationGracePeriod = units.Duration(10 * time.Minute)
	f.Var(&l.CreationGracePeriod, "validation.create-grace-period", "How far in the future an entry may be.")
	f.BoolVar(&l.UnorderedWrites, "ingester.unordered-writes", true, "Accept out-of-order entries within half of max_chunk_age.")
	f.BoolVar(&l.AllowStructuredMetadata, "validation.allow-structured-metadata", true, "Accept structured metadata.")
	l.MaxStructuredMetadataSize = 64 << 10
	f.Var(&l.MaxStructuredMetadataSize, "limits.max-structured-metadata-size", "Maximum structured metadata bytes per entry.")
	f.IntVar(&l.MaxStructuredMetadataEntries, "limits.max-structured-metadata-entries-count", 128, "Maximum structured metadata entries per entry.")
	l.DiscoverServiceName = append([]string(nil), DefaultServiceNameLabels...)
	f.BoolVar(&l.DiscoverLogLevels, "validation.discover-log-levels", true, "Add detected_level structured metadata.")
	l.LogLevelFields = append([]string(nil), DefaultLogLevelFields...)

	f.IntVar(&l.MaxEntriesLimitPerQuery, "validation.max-entries-limit", 5000, "Maximum entries a log query may return.")
	l.MaxQueryLength = units.Duration(721 * time.Hour)
	f.Var(&l.MaxQueryLength, "store.max-query-length", "Maximum query time range; 0 disables.")
	f.Var(&l.MaxQueryLookback, "querier.max-query-lookback", "How far back queries may look; 0 disables.")
	f.Var(&l.MaxQueryRange, "querier.max-query-range", "Maximum range of a range vector; 0 disables.")
	f.IntVar(&l.MaxQuerySeries, "querier.max-query-series", 500, "Maximum series a metric query may return.")
	f.IntVar(&l.MaxQueryParallelism, "querier.max-query-parallelism", 32, "Maximum parallel sub-queries.")
	f.Var(&l.MaxQueryBytesRead, "querier.max-query-bytes-read", "Maximum bytes a query may read; 0 disables.")
	l.QueryTimeout = units.Duration(time.Minute)
	f.Var(&l.QueryTimeout, "querier.query-timeout", "Query timeout.")
	l.SplitQueriesByInterval = units.Duration(time.Hour)
	f.Var(&l.SplitQueriesByInterval, "querier.split-queries-by-interval", "Split metric queries by this interval.")
	f.BoolVar(&l.RequireSelectiveMatcher, "querier.require-selective-matcher", false, "Reject selectors whose matchers all match the empty string, as Loki does.")
	f.BoolVar(&l.VolumeEnabled, "limits.volume-enabled", true, "Serve index/volume endpoints.")
	f.IntVar(&l.VolumeMaxSeries, "limits.volume-max-series", 1000, "Maximum series of a volume query.")
	f.Var(&l.RetentionPeriod, "store.retention", "Retention period; 0 keeps data forever.")
}

// Defaults returns Loki's default limits.
func Defaults() Limits {
	var l Limits
	l.RegisterFlags(flag.NewFlagSet("", flag.ContinueOnError))
	return l
}

package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/units"
	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/relabel"
	"go.yaml.in/yaml/v3"
)

// Config is a Promtail configuration file. Field names and YAML keys follow
// Promtail so that an existing promtail.yaml loads unchanged.
type Config struct {
	Server        ServerConfig    `yaml:"server"`
	Clients       []ClientConfig  `yaml:"clients,omitempty"`
	Client        *ClientConfig   `yaml:"client,omitempty"` // legacy single client
	Positions     PositionsConfig `yaml:"positions"`
	ScrapeConfigs []ScrapeConfig  `yaml:"scrape_configs,omitempty"`
	LimitsConfig  LimitsConfig    `yaml:"limits_config"`
	TargetConfig  TargetConfig    `yaml:"target_config"`
	Options       OptionsConfig   `yaml:"options"`
	Global        GlobalConfig    `yaml:"global"`
	Tracing       TracingConfig   `yaml:"tracing"`
	WAL           *WALConfig      `yaml:"wal,omitempty"`
}

// ServerConfig is Promtail's server block. Keys of the gRPC server are
// accepted for compatibility and ignored: the agent serves HTTP only.
type ServerConfig struct {
	Disable                 bool           `yaml:"disable"`
	ProfilingEnabled        bool           `yaml:"profiling_enabled"`
	HTTPListenNetwork       string         `yaml:"http_listen_network,omitempty"`
	HTTPListenAddress       string         `yaml:"http_listen_address"`
	HTTPListenPort          int            `yaml:"http_listen_port"`
	HTTPConnLimit           int            `yaml:"http_listen_conn_limit,omitempty"`
	GRPCListenNetwork       string         `yaml:"grpc_listen_network,omitempty"`
	GRPCListenAddress       string         `yaml:"grpc_listen_address,omitempty"`
	GRPCListenPort          int            `yaml:"grpc_listen_port"`
	GRPCConnLimit           int            `yaml:"grpc_listen_conn_limit,omitempty"`
	RegisterInstrumentation bool           `yaml:"register_instrumentation"`
	GracefulShutdownTimeout units.Duration `yaml:"graceful_shutdown_timeout"`
	HTTPReadTimeout         units.Duration `yaml:"http_server_read_timeout"`
	HTTPWriteTimeout        units.Duration `yaml:"http_server_write_timeout"`
	HTTPIdleTimeout         units.Duration `yaml:"http_server_idle_timeout"`
	GRPCMaxRecvMsgSize      int            `yaml:"grpc_server_max_recv_msg_size,omitempty"`
	GRPCMaxSendMsgSize      int            `yaml:"grpc_server_max_send_msg_size,omitempty"`
	GRPCMaxConcurrent       uint           `yaml:"grpc_server_max_concurrent_streams,omitempty"`
	LogLevel                string         `yaml:"log_level"`
	LogFormat               string         `yaml:"log_format,omitempty"`
	PathPrefix              string         `yaml:"http_path_prefix,omitempty"`
	ExternalURL             string         `yaml:"external_url,omitempty"`
	HealthCheckTarget       *bool          `yaml:"health_check_target,omitempty"`
	EnableRuntimeReload     bool           `yaml:"enable_runtime_reload"`
}

// ClientConfig is one entry of clients: where and how batches are pushed.
type ClientConfig struct {
	URL      string            `yaml:"url"`
	Headers  map[string]string `yaml:"headers,omitempty"`
	TenantID string            `yaml:"tenant_id,omitempty"`
	// BatchWait is the maximum age of a batch before it is sent.
	BatchWait units.Duration `yaml:"batchwait"`
	// BatchSize is the maximum size of a batch in line bytes.
	BatchSize units.ByteSize `yaml:"batchsize"`
	// HTTPClientConfig carries basic_auth, bearer_token(_file),
	// authorization, oauth2, tls_config, proxy_url, ... exactly as
	// Prometheus and Promtail spell them.
	HTTPClientConfig       promconfig.HTTPClientConfig `yaml:",inline"`
	BackoffConfig          BackoffConfig               `yaml:"backoff_config"`
	ExternalLabels         map[string]string           `yaml:"external_labels,omitempty"`
	Timeout                units.Duration              `yaml:"timeout"`
	DropRateLimitedBatches bool                        `yaml:"drop_rate_limited_batches"`
	StreamLagLabels        yaml.Node                   `yaml:"stream_lag_labels,omitempty"`
	// DiskBuffer is a Ledgerlog extension: batches are spooled to disk while
	// the server does not acknowledge them.
	DiskBuffer *DiskBufferConfig `yaml:"disk_buffer,omitempty"`
}

// BackoffConfig is dskit's backoff block.
type BackoffConfig struct {
	MinPeriod  units.Duration `yaml:"min_period"`
	MaxPeriod  units.Duration `yaml:"max_period"`
	MaxRetries int            `yaml:"max_retries"`
}

// DiskBufferConfig configures the on-disk spool of a client.
type DiskBufferConfig struct {
	Dir     string         `yaml:"dir"`
	MaxSize units.ByteSize `yaml:"max_size"`
}

// PositionsConfig is Promtail's positions block.
type PositionsConfig struct {
	Filename          string         `yaml:"filename"`
	SyncPeriod        units.Duration `yaml:"sync_period"`
	IgnoreInvalidYaml bool           `yaml:"ignore_invalid_yaml"`
	ReadOnly          bool           `yaml:"-"`
}

// LimitsConfig is Promtail's limits_config block.
type LimitsConfig struct {
	ReadlineRateEnabled bool           `yaml:"readline_rate_enabled"`
	ReadlineRate        float64        `yaml:"readline_rate"`
	ReadlineBurst       int            `yaml:"readline_burst"`
	ReadlineRateDrop    bool           `yaml:"readline_rate_drop"`
	MaxStreams          int            `yaml:"max_streams"`
	MaxLineSize         units.ByteSize `yaml:"max_line_size"`
	MaxLineSizeTruncate bool           `yaml:"max_line_size_truncate"`
}

// TargetConfig is Promtail's target_config block.
type TargetConfig struct {
	SyncPeriod units.Duration `yaml:"sync_period"`
}

// OptionsConfig is Promtail's options block.
type OptionsConfig struct {
	StreamLagLabels yaml.Node `yaml:"stream_lag_labels,omitempty"`
}

// GlobalConfig is Promtail's global block.
type GlobalConfig struct {
	FileWatch FileWatchConfig `yaml:"file_watch_config"`
}

// FileWatchConfig bounds the polling frequency of file watching.
type FileWatchConfig struct {
	MinPollFrequency units.Duration `yaml:"min_poll_frequency"`
	MaxPollFrequency units.Duration `yaml:"max_poll_frequency"`
}

// TracingConfig is accepted; tracing is not exported.
type TracingConfig struct {
	Enabled bool `yaml:"enabled"`
}

// WALConfig is Promtail's late write-ahead log block; only disabled is
// accepted (use clients[].disk_buffer instead).
type WALConfig struct {
	Enabled       bool           `yaml:"enabled"`
	Dir           string         `yaml:"dir,omitempty"`
	MaxSegmentAge units.Duration `yaml:"max_segment_age,omitempty"`
}

// ScrapeConfig is one entry of scrape_configs.
type ScrapeConfig struct {
	JobName        string            `yaml:"job_name"`
	PipelineStages []yaml.Node       `yaml:"pipeline_stages,omitempty"`
	RelabelConfigs []*relabel.Config `yaml:"relabel_configs,omitempty"`
	StaticConfigs  []StaticConfig    `yaml:"static_configs,omitempty"`
	FileSDConfigs  []FileSDConfig    `yaml:"file_sd_configs,omitempty"`
	Syslog         *SyslogConfig     `yaml:"syslog,omitempty"`
	PushAPI        *PushConfig       `yaml:"loki_push_api,omitempty"`
	Journal        presence          `yaml:"journal,omitempty"`
	Encoding       string            `yaml:"encoding,omitempty"`
	Decompression  *Decompression    `yaml:"decompression,omitempty"`

	// Sources Promtail knows that this agent does not implement. They are
	// decoded so that their presence is reported by name.
	KubernetesSD    presence `yaml:"kubernetes_sd_configs,omitempty"`
	ConsulSD        presence `yaml:"consul_sd_configs,omitempty"`
	ConsulAgentSD   presence `yaml:"consulagent_sd_configs,omitempty"`
	DockerSD        presence `yaml:"docker_sd_configs,omitempty"`
	WindowsEvents   presence `yaml:"windows_events,omitempty"`
	GCPLog          presence `yaml:"gcplog,omitempty"`
	AzureEventHubs  presence `yaml:"azure_event_hubs,omitempty"`
	Kafka           presence `yaml:"kafka,omitempty"`
	GELF            presence `yaml:"gelf,omitempty"`
	Cloudflare      presence `yaml:"cloudflare,omitempty"`
	HerokuDrain     presence `yaml:"heroku_drain,omitempty"`
	ServiceDiscover presence `yaml:"service_discovery,omitempty"`
}

// StaticConfig is a Prometheus static target group.
type StaticConfig struct {
	Targets []string          `yaml:"targets,omitempty"`
	Labels  map[string]string `yaml:"labels,omitempty"`
}

// FileSDConfig is a Prometheus file_sd_configs entry.
type FileSDConfig struct {
	Files           []string       `yaml:"files"`
	RefreshInterval units.Duration `yaml:"refresh_interval"`
}

// Decompression configures reading compressed files once.
type Decompression struct {
	Enabled      bool           `yaml:"enabled"`
	InitialDelay units.Duration `yaml:"initial_delay"`
	Format       string         `yaml:"format"`
}

// SyslogConfig is the syslog source.
type SyslogConfig struct {
	ListenAddress        string                `yaml:"listen_address"`
	ListenProtocol       string                `yaml:"listen_protocol,omitempty"`
	IdleTimeout          units.Duration        `yaml:"idle_timeout"`
	LabelStructuredData  bool                  `yaml:"label_structured_data"`
	Labels               map[string]string     `yaml:"labels,omitempty"`
	UseIncomingTimestamp bool                  `yaml:"use_incoming_timestamp"`
	UseRFC5424Message    bool                  `yaml:"use_rfc5424_message"`
	MaxMessageLength     int                   `yaml:"max_message_length"`
	TLSConfig            *promconfig.TLSConfig `yaml:"tls_config,omitempty"`
	SyslogFormat         string                `yaml:"syslog_format,omitempty"`
}

// PushConfig is the loki_push_api source.
type PushConfig struct {
	Server               ServerConfig      `yaml:"server"`
	Labels               map[string]string `yaml:"labels,omitempty"`
	UseIncomingTimestamp bool              `yaml:"use_incoming_timestamp"`
}

// Defaults as Promtail documents them.
const (
	defaultBatchWait        = time.Second
	defaultBatchSize        = 1 << 20
	defaultMinBackoff       = 500 * time.Millisecond
	defaultMaxBackoff       = 5 * time.Minute
	defaultMaxRetries       = 10
	defaultClientTimeout    = 10 * time.Second
	defaultPositionsFile    = "/var/log/positions.yaml"
	defaultPositionsSync    = 10 * time.Second
	defaultTargetSync       = 10 * time.Second
	defaultPollFrequency    = 250 * time.Millisecond
	defaultFileSDRefresh    = 5 * time.Minute
	defaultSyslogIdle       = 120 * time.Second
	defaultSyslogMaxMessage = 8192
)

// DefaultClientConfig returns a client block with Promtail's defaults.
func DefaultClientConfig() ClientConfig {
	return ClientConfig{
		BatchWait:        units.Duration(defaultBatchWait),
		BatchSize:        defaultBatchSize,
		HTTPClientConfig: promconfig.DefaultHTTPClientConfig,
		BackoffConfig: BackoffConfig{
			MinPeriod:  units.Duration(defaultMinBackoff),
			MaxPeriod:  units.Duration(defaultMaxBackoff),
			MaxRetries: defaultMaxRetries,
		},
		Timeout: units.Duration(defaultClientTimeout),
	}
}

// UnmarshalYAML applies defaults before decoding.
func (c *ClientConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultClientConfig()
	type plain ClientConfig
	return unmarshal((*plain)(c))
}

// UnmarshalYAML applies defaults before decoding.
func (c *ServerConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = defaultServerConfig()
	type plain ServerConfig
	return unmarshal((*plain)(c))
}

func defaultServerConfig() ServerConfig {
	return ServerConfig{
		HTTPListenPort:          80,
		GRPCListenPort:          9095,
		RegisterInstrumentation: true,
		GracefulShutdownTimeout: units.Duration(30 * time.Second),
		HTTPReadTimeout:         units.Duration(30 * time.Second),
		HTTPWriteTimeout:        units.Duration(30 * time.Second),
		HTTPIdleTimeout:         units.Duration(120 * time.Second),
		LogLevel:                "info",
	}
}

// UnmarshalYAML applies defaults before decoding.
func (c *SyslogConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = SyslogConfig{IdleTimeout: units.Duration(defaultSyslogIdle), MaxMessageLength: defaultSyslogMaxMessage}
	type plain SyslogConfig
	return unmarshal((*plain)(c))
}

// UnmarshalYAML applies defaults before decoding.
func (c *FileSDConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = FileSDConfig{RefreshInterval: units.Duration(defaultFileSDRefresh)}
	type plain FileSDConfig
	return unmarshal((*plain)(c))
}

// DefaultConfig returns the configuration Promtail starts from before the
// file is applied.
func DefaultConfig() Config {
	return Config{
		Server:       defaultServerConfig(),
		Positions:    PositionsConfig{Filename: defaultPositionsFile, SyncPeriod: units.Duration(defaultPositionsSync)},
		TargetConfig: TargetConfig{SyncPeriod: units.Duration(defaultTargetSync)},
		Global: GlobalConfig{FileWatch: FileWatchConfig{
			MinPollFrequency: units.Duration(defaultPollFrequency),
			MaxPollFrequency: units.Duration(defaultPollFrequency),
		}},
	}
}

// ErrNotSupported marks configuration that names a Promtail feature this
// agent does not implement.
var ErrNotSupported = errors.New("not supported")

// ParseConfig decodes a Promtail YAML document strictly: unknown keys are
// errors that carry their line number. When expandEnv is set, ${VAR} and
// ${VAR:-default} references are substituted first.
func ParseConfig(data []byte, expandEnv bool) (*Config, error) {
	if expandEnv {
		data = []byte(ExpandEnv(string(data), os.LookupEnv))
	}
	cfg := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse config: %w", err)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// LoadConfig reads and parses a config file.
func LoadConfig(path string, expandEnv bool) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := ParseConfig(data, expandEnv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// presence records that a config key was given (and where) without
// decoding it: the key names a Promtail feature this agent lacks.
type presence struct {
	set  bool
	line int
}

// UnmarshalYAML records the key's presence.
func (p *presence) UnmarshalYAML(n *yaml.Node) error {
	p.set, p.line = true, n.Line
	return nil
}

// IsZero reports whether the key was absent.
func (p presence) IsZero() bool { return !p.set }

func notSupported(name string, line int) error {
	if line > 0 {
		return fmt.Errorf("line %d: %w: %s", line, ErrNotSupported, name)
	}
	return fmt.Errorf("%w: %s", ErrNotSupported, name)
}

// validate checks the decoded config and normalises legacy forms.
func (c *Config) validate() error {
	if c.Client != nil {
		c.Clients = append([]ClientConfig{*c.Client}, c.Clients...)
		c.Client = nil
	}
	if c.WAL != nil && c.WAL.Enabled {
		return notSupported("wal (use clients[].disk_buffer)", 0)
	}
	if c.Tracing.Enabled {
		return notSupported("tracing", 0)
	}
	for i := range c.Clients {
		cl := &c.Clients[i]
		if cl.URL == "" {
			return fmt.Errorf("clients[%d]: url is required", i)
		}
		if err := cl.HTTPClientConfig.Validate(); err != nil {
			return fmt.Errorf("clients[%d]: %w", i, err)
		}
		for k := range cl.ExternalLabels {
			if !model.LabelName(k).IsValidLegacy() {
				return fmt.Errorf("clients[%d]: invalid external label name %q", i, k)
			}
		}
		if cl.DiskBuffer != nil && cl.DiskBuffer.Dir == "" {
			return fmt.Errorf("clients[%d]: disk_buffer.dir is required", i)
		}
	}
	jobs := map[string]bool{}
	for i := range c.ScrapeConfigs {
		sc := &c.ScrapeConfigs[i]
		if sc.JobName == "" {
			return fmt.Errorf("scrape_configs[%d]: job_name is required", i)
		}
		if jobs[sc.JobName] {
			return fmt.Errorf("scrape_configs[%d]: duplicate job_name %q", i, sc.JobName)
		}
		jobs[sc.JobName] = true
		for name, n := range map[string]presence{
			"kubernetes_sd_configs": sc.KubernetesSD, "consul_sd_configs": sc.ConsulSD,
			"consulagent_sd_configs": sc.ConsulAgentSD, "docker_sd_configs": sc.DockerSD,
			"windows_events": sc.WindowsEvents, "gcplog": sc.GCPLog, "azure_event_hubs": sc.AzureEventHubs,
			"kafka": sc.Kafka, "gelf": sc.GELF, "cloudflare": sc.Cloudflare, "heroku_drain": sc.HerokuDrain,
			"journal": sc.Journal,
		} {
			if n.set {
				return fmt.Errorf("scrape_configs[%d] (%s): %w", i, sc.JobName, notSupported(name, n.line))
			}
		}
		if sc.ServiceDiscover.set {
			return fmt.Errorf("scrape_configs[%d] (%s): %w", i, sc.JobName, notSupported("service_discovery", sc.ServiceDiscover.line))
		}
		for j, rc := range sc.RelabelConfigs {
			if rc == nil {
				return fmt.Errorf("scrape_configs[%d]: relabel_configs[%d] is empty", i, j)
			}
			if err := rc.Validate(model.LegacyValidation); err != nil {
				return fmt.Errorf("scrape_configs[%d] (%s): relabel_configs[%d]: %w", i, sc.JobName, j, err)
			}
		}
		if sc.Encoding != "" {
			if _, err := lookupEncoding(sc.Encoding); err != nil {
				return fmt.Errorf("scrape_configs[%d] (%s): %w", i, sc.JobName, err)
			}
		}
		if d := sc.Decompression; d != nil && d.Enabled {
			switch d.Format {
			case "gz", "bz2", "z":
			default:
				return fmt.Errorf("scrape_configs[%d] (%s): decompression format %q: %w", i, sc.JobName, d.Format, ErrNotSupported)
			}
		}
		if s := sc.Syslog; s != nil {
			if s.ListenAddress == "" {
				return fmt.Errorf("scrape_configs[%d] (%s): syslog.listen_address is required", i, sc.JobName)
			}
			switch strings.ToLower(s.ListenProtocol) {
			case "", "tcp", "udp":
			default:
				return fmt.Errorf("scrape_configs[%d] (%s): syslog.listen_protocol %q: %w", i, sc.JobName, s.ListenProtocol, ErrNotSupported)
			}
			switch strings.ToLower(s.SyslogFormat) {
			case "", "rfc5424", "rfc3164":
			default:
				return fmt.Errorf("scrape_configs[%d] (%s): syslog.syslog_format %q: %w", i, sc.JobName, s.SyslogFormat, ErrNotSupported)
			}
		}
	}
	if c.LimitsConfig.ReadlineRateEnabled && c.LimitsConfig.ReadlineRate <= 0 {
		return fmt.Errorf("limits_config: readline_rate must be positive")
	}
	return nil
}

// String renders the effective configuration as YAML; secrets are masked by
// the Prometheus Secret type.
func (c *Config) String() string {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return fmt.Sprintf("# render config: %v\n", err)
	}
	_ = enc.Close()
	return buf.String()
}

// streamLagLabels returns the option as a list, accepting both a YAML list
// and Promtail's comma-separated string.
func nodeStrings(n yaml.Node) []string {
	switch n.Kind {
	case yaml.ScalarNode:
		var out []string
		for _, s := range strings.Split(n.Value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	case yaml.SequenceNode:
		var out []string
		_ = n.Decode(&out)
		return out
	}
	return nil
}

// ExpandEnv substitutes environment references the way Promtail's
// -config.expand-env does: ${VAR}, ${VAR:-default}, ${VAR-default} and
// $VAR. "$$" produces a literal "$"; "$" followed by a digit (relabel
// replacements such as $1) is left untouched. Undefined variables expand to
// the empty string.
func ExpandEnv(s string, lookup func(string) (string, bool)) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		next := s[i+1]
		switch {
		case next == '$':
			b.WriteByte('$')
			i++
		case next == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			expr := s[i+2 : i+2+end]
			name, def, hasDef, emptyDef := expr, "", false, false
			if k := strings.Index(expr, ":-"); k >= 0 {
				name, def, hasDef, emptyDef = expr[:k], expr[k+2:], true, true
			} else if k := strings.IndexByte(expr, '-'); k >= 0 {
				name, def, hasDef = expr[:k], expr[k+1:], true
			}
			v, ok := lookup(name)
			if hasDef && (!ok || (emptyDef && v == "")) {
				v = def
			}
			b.WriteString(v)
			i += 2 + end
		case isEnvStart(next):
			j := i + 1
			for j < len(s) && isEnvChar(s[j]) {
				j++
			}
			v, _ := lookup(s[i+1 : j])
			b.WriteString(v)
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isEnvStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isEnvChar(c byte) bool { return isEnvStart(c) || (c >= '0' && c <= '9') }

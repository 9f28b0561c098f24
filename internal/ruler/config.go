package ruler

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/ledgerlog/ledgerlog/internal/units"
)

// Config is Loki's `ruler` block. RegisterFlags is the single source of
// defaults; flag names are Loki's.
type Config struct {
	// Storage is the deprecated in-block rule storage (`ruler.storage`);
	// the top-level ruler_storage block (BackendConfig) takes precedence.
	Storage StorageConfig `yaml:"storage"`
	// RulePath is where the ruler keeps its own data: the alert state
	// files that let pending and firing alerts survive a restart. Empty
	// means <path_prefix>/rules-temp, Loki's default location.
	RulePath string `yaml:"rule_path"`
	// ExternalURL is the base of the generatorURL sent with alerts and of
	// $externalURL in templates. Empty means the server's own address.
	ExternalURL string `yaml:"external_url"`
	// ExternalLabels are added to every alert sent to Alertmanager and to
	// every remote-written series unless the alert or series has the label.
	ExternalLabels map[string]string `yaml:"external_labels,omitempty"`
	// EvaluationInterval is the interval of groups that set none.
	EvaluationInterval units.Duration `yaml:"evaluation_interval"`
	// PollInterval is how often the rule directory is re-read.
	PollInterval units.Duration `yaml:"poll_interval"`
	// EnableAPI serves the rules configuration and Prometheus-format APIs.
	EnableAPI bool `yaml:"enable_api"`
	// AlertmanagerURL is a comma-separated list of Alertmanager base URLs;
	// alerts are POSTed to <url>/api/v2/alerts. Empty sends no alerts.
	AlertmanagerURL string `yaml:"alertmanager_url"`
	// AlertmanagerClient authenticates to the Alertmanagers.
	AlertmanagerClient AlertmanagerClientConfig `yaml:"alertmanager_client"`
	// NotificationQueueCapacity bounds the alerts queued per Alertmanager;
	// the oldest are dropped past it.
	NotificationQueueCapacity int `yaml:"notification_queue_capacity"`
	// NotificationTimeout bounds one POST to an Alertmanager.
	NotificationTimeout units.Duration `yaml:"notification_timeout"`
	// ForOutageTolerance is the longest ruler outage after which pending
	// alerts keep their activeAt; after a longer one their `for` restarts.
	ForOutageTolerance units.Duration `yaml:"for_outage_tolerance"`
	// ForGracePeriod is the least time after a restart before a restored
	// pending alert with `for` >= ForGracePeriod may fire.
	ForGracePeriod units.Duration `yaml:"for_grace_period"`
	// ResendDelay is the least time between two notifications of the same
	// firing alert.
	ResendDelay units.Duration `yaml:"resend_delay"`
	// RemoteWrite sends the samples of recording rules (and the ALERTS
	// series) to Prometheus-compatible receivers.
	RemoteWrite RemoteWriteConfig `yaml:"remote_write"`
}

// StorageConfig is Loki's deprecated `ruler.storage` block. Only the local
// type is built in; the other Loki types are named so that a config using
// them fails with a clear message instead of an unknown-key error.
type StorageConfig struct {
	Type  string      `yaml:"type"`
	Local LocalConfig `yaml:"local"`

	S3    yaml.Node `yaml:"s3,omitempty"`
	GCS   yaml.Node `yaml:"gcs,omitempty"`
	Azure yaml.Node `yaml:"azure,omitempty"`
	Swift yaml.Node `yaml:"swift,omitempty"`
}

// LocalConfig is a rule directory: <directory>/<tenant>/<namespace>.yaml.
type LocalConfig struct {
	Directory string `yaml:"directory"`
}

// BackendConfig is Loki's top-level `ruler_storage` block. Backends local
// and filesystem are the same rule directory here.
type BackendConfig struct {
	Backend    string            `yaml:"backend"`
	Local      LocalConfig       `yaml:"local"`
	Filesystem FilesystemBackend `yaml:"filesystem"`

	S3            yaml.Node `yaml:"s3,omitempty"`
	GCS           yaml.Node `yaml:"gcs,omitempty"`
	Azure         yaml.Node `yaml:"azure,omitempty"`
	Swift         yaml.Node `yaml:"swift,omitempty"`
	COS           yaml.Node `yaml:"cos,omitempty"`
	Alibaba       yaml.Node `yaml:"alibabacloud,omitempty"`
	BOS           yaml.Node `yaml:"bos,omitempty"`
	StoragePrefix string    `yaml:"storage_prefix,omitempty"`
}

// FilesystemBackend is ruler_storage.filesystem.
type FilesystemBackend struct {
	Dir string `yaml:"dir"`
}

// AlertmanagerClientConfig is Loki's ruler.alertmanager_client block.
// Credentials in an Alertmanager URL (http://user:pass@host) are used too.
type AlertmanagerClientConfig struct {
	BasicAuthUsername     string `yaml:"basic_auth_username"`
	BasicAuthPassword     Secret `yaml:"basic_auth_password"`
	Type                  string `yaml:"type"`
	Credentials           Secret `yaml:"credentials"`
	CredentialsFile       string `yaml:"credentials_file"`
	TLSCertPath           string `yaml:"tls_cert_path"`
	TLSKeyPath            string `yaml:"tls_key_path"`
	TLSCAPath             string `yaml:"tls_ca_path"`
	TLSServerName         string `yaml:"tls_server_name"`
	TLSInsecureSkipVerify bool   `yaml:"tls_insecure_skip_verify"`
}

// RemoteWriteConfig is Loki's ruler.remote_write block.
type RemoteWriteConfig struct {
	Enabled bool `yaml:"enabled"`
	// Client is the single client of older Loki configs; Clients the
	// named clients of newer ones. Both may be set.
	Client  *RemoteWriteClient           `yaml:"client,omitempty"`
	Clients map[string]RemoteWriteClient `yaml:"clients,omitempty"`
	// AddOrgIDHeader sends the rule's tenant as X-Scope-OrgID.
	AddOrgIDHeader bool `yaml:"add_org_id_header"`
	// ConfigRefreshPeriod is accepted for Loki compatibility; clients are
	// built once at start.
	ConfigRefreshPeriod units.Duration `yaml:"config_refresh_period"`
}

// RemoteWriteClient is the subset of Prometheus' remote_write client
// configuration that the ruler implements.
type RemoteWriteClient struct {
	Name          string            `yaml:"name,omitempty"`
	URL           string            `yaml:"url"`
	RemoteTimeout units.Duration    `yaml:"remote_timeout,omitempty"`
	Headers       map[string]string `yaml:"headers,omitempty"`
	BasicAuth     *BasicAuth        `yaml:"basic_auth,omitempty"`
	Authorization *Authorization    `yaml:"authorization,omitempty"`
	TLSConfig     TLSConfig         `yaml:"tls_config,omitempty"`
	QueueConfig   QueueConfig       `yaml:"queue_config,omitempty"`
}

// BasicAuth is Prometheus' basic_auth block.
type BasicAuth struct {
	Username     string `yaml:"username"`
	Password     Secret `yaml:"password,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty"`
}

// Authorization is Prometheus' authorization block (default type Bearer).
type Authorization struct {
	Type            string `yaml:"type,omitempty"`
	Credentials     Secret `yaml:"credentials,omitempty"`
	CredentialsFile string `yaml:"credentials_file,omitempty"`
}

// TLSConfig is Prometheus' tls_config block.
type TLSConfig struct {
	CAFile             string `yaml:"ca_file,omitempty"`
	CertFile           string `yaml:"cert_file,omitempty"`
	KeyFile            string `yaml:"key_file,omitempty"`
	ServerName         string `yaml:"server_name,omitempty"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify,omitempty"`
}

// QueueConfig is the part of Prometheus' queue_config the ruler uses. Zero
// values take the defaults shown.
type QueueConfig struct {
	// Capacity bounds the samples queued per client (10000); the oldest
	// are dropped past it.
	Capacity int `yaml:"capacity,omitempty"`
	// MaxSamplesPerSend bounds one request (2000).
	MaxSamplesPerSend int `yaml:"max_samples_per_send,omitempty"`
	// MinBackoff and MaxBackoff bound the retry back-off (30ms, 5s).
	MinBackoff units.Duration `yaml:"min_backoff,omitempty"`
	MaxBackoff units.Duration `yaml:"max_backoff,omitempty"`
	// RetryOnRateLimit retries 429 answers instead of dropping the batch.
	RetryOnRateLimit bool `yaml:"retry_on_http_429,omitempty"`
}

// Secret is a string printed masked by `config print`.
type Secret string

// MarshalYAML masks a set secret.
func (s Secret) MarshalYAML() (any, error) {
	if s == "" {
		return "", nil
	}
	return "<secret>", nil
}

// RegisterFlags registers the flags and sets the defaults.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.Storage.Type, "ruler.storage.type", "", "Rule storage type; only 'local' is built in (ruler_storage takes precedence).")
	f.StringVar(&c.Storage.Local.Directory, "ruler.storage.local.directory", "", "Rule directory <dir>/<tenant>/<namespace>.yaml (default <path_prefix>/rules).")
	f.StringVar(&c.RulePath, "ruler.rule-path", "", "Directory of the ruler's alert state (default <path_prefix>/rules-temp).")
	f.StringVar(&c.ExternalURL, "ruler.external.url", "", "Base URL of alert generator links and $externalURL (default: this server).")
	c.EvaluationInterval = units.Duration(time.Minute)
	f.Var(&c.EvaluationInterval, "ruler.evaluation-interval", "Evaluation interval of groups that set none.")
	c.PollInterval = units.Duration(time.Minute)
	f.Var(&c.PollInterval, "ruler.poll-interval", "How often the rule directory is re-read.")
	f.BoolVar(&c.EnableAPI, "ruler.enable-api", true, "Serve the rules configuration API and the Prometheus rules/alerts API.")
	f.StringVar(&c.AlertmanagerURL, "ruler.alertmanager-url", "", "Comma-separated Alertmanager URLs; empty sends no notifications.")
	c.NotificationQueueCapacity = 10000
	f.IntVar(&c.NotificationQueueCapacity, "ruler.notification-queue-capacity", 10000, "Alerts queued per Alertmanager before the oldest are dropped.")
	c.NotificationTimeout = units.Duration(10 * time.Second)
	f.Var(&c.NotificationTimeout, "ruler.notification-timeout", "Timeout of one request to an Alertmanager.")
	c.ForOutageTolerance = units.Duration(time.Hour)
	f.Var(&c.ForOutageTolerance, "ruler.for-outage-tolerance", "Longest outage after which pending alerts keep their activeAt.")
	c.ForGracePeriod = units.Duration(10 * time.Minute)
	f.Var(&c.ForGracePeriod, "ruler.for-grace-period", "Least time after a restart before a restored pending alert fires.")
	c.ResendDelay = units.Duration(time.Minute)
	f.Var(&c.ResendDelay, "ruler.resend-delay", "Least time between two notifications of a firing alert.")
	f.BoolVar(&c.RemoteWrite.Enabled, "ruler.remote-write.enabled", false, "Remote-write recording rule results.")
	f.BoolVar(&c.RemoteWrite.AddOrgIDHeader, "ruler.remote-write.add-org-id-header", true, "Send the tenant as X-Scope-OrgID with remote-write requests.")
	c.RemoteWrite.ConfigRefreshPeriod = units.Duration(10 * time.Second)
	f.Var(&c.RemoteWrite.ConfigRefreshPeriod, "ruler.remote-write.config-refresh-period", "Accepted for compatibility.")
}

// RegisterFlags registers the ruler_storage flags.
func (c *BackendConfig) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.Backend, "ruler-storage.backend", "", "Rule storage backend: local or filesystem (same rule directory).")
	f.StringVar(&c.Local.Directory, "ruler-storage.local.directory", "", "Rule directory for backend local.")
	f.StringVar(&c.Filesystem.Dir, "ruler-storage.filesystem.dir", "", "Rule directory for backend filesystem.")
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
	switch c.Storage.Type {
	case "", "local":
	default:
		errs = append(errs, fmt.Errorf("ruler.storage.type %q: only local rule storage is built in", c.Storage.Type))
	}
	if c.EvaluationInterval <= 0 {
		errs = append(errs, errors.New("ruler.evaluation_interval must be positive"))
	}
	if c.PollInterval <= 0 {
		errs = append(errs, errors.New("ruler.poll_interval must be positive"))
	}
	if c.ResendDelay < 0 || c.ForGracePeriod < 0 || c.ForOutageTolerance < 0 {
		errs = append(errs, errors.New("ruler.resend_delay, for_grace_period and for_outage_tolerance must not be negative"))
	}
	if c.NotificationQueueCapacity <= 0 {
		errs = append(errs, errors.New("ruler.notification_queue_capacity must be positive"))
	}
	if c.NotificationTimeout <= 0 {
		errs = append(errs, errors.New("ruler.notification_timeout must be positive"))
	}
	if _, err := c.AlertmanagerURLs(); err != nil {
		errs = append(errs, err)
	}
	if c.ExternalURL != "" {
		if _, err := parseHTTPURL(c.ExternalURL); err != nil {
			errs = append(errs, fmt.Errorf("ruler.external_url: %w", err))
		}
	}
	for name := range c.ExternalLabels {
		if !model.LabelName(name).IsValidLegacy() {
			errs = append(errs, fmt.Errorf("ruler.external_labels: invalid label name %q", name))
		}
	}
	if c.RemoteWrite.Enabled {
		clients := c.RemoteWrite.clients()
		if len(clients) == 0 {
			errs = append(errs, errors.New("ruler.remote_write.enabled needs a client with a url"))
		}
		for _, cl := range clients {
			if _, err := parseHTTPURL(cl.URL); err != nil {
				errs = append(errs, fmt.Errorf("ruler.remote_write client %q: url: %w", cl.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Validate checks ruler_storage.
func (c *BackendConfig) Validate() error {
	switch c.Backend {
	case "", "local", "filesystem":
		return nil
	}
	return fmt.Errorf("ruler_storage.backend %q: only local and filesystem rule storage are built in", c.Backend)
}

// AlertmanagerURLs parses AlertmanagerURL.
func (c *Config) AlertmanagerURLs() ([]*url.URL, error) {
	var out []*url.URL
	for _, s := range strings.Split(c.AlertmanagerURL, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		u, err := parseHTTPURL(s)
		if err != nil {
			return nil, fmt.Errorf("ruler.alertmanager_url %q: %w", s, err)
		}
		out = append(out, u)
	}
	return out, nil
}

// RuleDir is the effective rule directory: ruler_storage, then
// ruler.storage, then <pathPrefix>/rules.
func (c *Config) RuleDir(rs BackendConfig, pathPrefix string) string {
	switch {
	case rs.Backend == "filesystem" && rs.Filesystem.Dir != "":
		return rs.Filesystem.Dir
	case rs.Backend == "local" && rs.Local.Directory != "":
		return rs.Local.Directory
	case rs.Backend == "" && rs.Local.Directory != "":
		return rs.Local.Directory
	case rs.Backend == "" && rs.Filesystem.Dir != "":
		return rs.Filesystem.Dir
	case c.Storage.Local.Directory != "":
		return c.Storage.Local.Directory
	}
	return filepath.Join(pathPrefix, "rules")
}

// StateDir is the effective directory of the alert state files.
func (c *Config) StateDir(pathPrefix string) string {
	if c.RulePath != "" {
		return c.RulePath
	}
	return filepath.Join(pathPrefix, "rules-temp")
}

// clients returns the configured remote-write clients, named.
func (c *RemoteWriteConfig) clients() []RemoteWriteClient {
	var out []RemoteWriteClient
	if c.Client != nil && c.Client.URL != "" {
		cl := *c.Client
		if cl.Name == "" {
			cl.Name = "default"
		}
		out = append(out, cl)
	}
	names := make([]string, 0, len(c.Clients))
	for n := range c.Clients {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		cl := c.Clients[n]
		if cl.Name == "" {
			cl.Name = n
		}
		out = append(out, cl)
	}
	return out
}

func parseHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("scheme %q: want http or https", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("no host")
	}
	return u, nil
}

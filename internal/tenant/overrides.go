package tenant

import (
	"bytes"
	"fmt"
	"os"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Overrides resolves the limits of each tenant: the defaults from
// limits_config, replaced key by key by the tenant's block in the runtime
// overrides file. It is safe for concurrent use; Load may run while readers
// call For.
type Overrides struct {
	defaults Limits

	mu     sync.RWMutex
	tenant map[string]*Limits // guarded by mu
}

// NewOverrides returns overrides that hold only the defaults.
func NewOverrides(defaults Limits) *Overrides {
	return &Overrides{defaults: defaults, tenant: map[string]*Limits{}}
}

// For returns the limits of a tenant. The result must not be modified.
func (o *Overrides) For(tenantID string) *Limits {
	o.mu.RLock()
	l, ok := o.tenant[tenantID]
	o.mu.RUnlock()
	if ok {
		return l
	}
	return &o.defaults
}

// Defaults returns the limits of tenants without overrides.
func (o *Overrides) Defaults() *Limits { return &o.defaults }

// runtimeFile is the runtime configuration file, as Loki's runtime_config.
type runtimeFile struct {
	Overrides map[string]yaml.Node `yaml:"overrides"`
}

// Load reads a runtime overrides file and replaces all tenant overrides.
// On error nothing changes.
func (o *Overrides) Load(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read runtime config %s: %w", path, err)
	}
	next, err := o.parse(b)
	if err != nil {
		return fmt.Errorf("runtime config %s: %w", path, err)
	}
	o.mu.Lock()
	o.tenant = next
	o.mu.Unlock()
	return nil
}

func (o *Overrides) parse(b []byte) (map[string]*Limits, error) {
	var rf runtimeFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil && err.Error() != "EOF" {
		return nil, err
	}
	next := make(map[string]*Limits, len(rf.Overrides))
	for id, node := range rf.Overrides {
		l := o.defaults
		l.DiscoverServiceName = append([]string(nil), o.defaults.DiscoverServiceName...)
		l.LogLevelFields = append([]string(nil), o.defaults.LogLevelFields...)
		if err := decodeStrict(&node, &l); err != nil {
			return nil, fmt.Errorf("overrides for tenant %q: %w", id, err)
		}
		next[id] = &l
	}
	return next, nil
}

func decodeStrict(node *yaml.Node, out any) error {
	b, err := yaml.Marshal(node)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(out)
}

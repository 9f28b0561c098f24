package ruler

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/ledgerlog/ledgerlog/internal/tenant"
)

// Errors of the rule store, with the texts of Loki's rules API.
var (
	ErrNoRuleGroups      = errors.New("no rule groups found")
	ErrGroupNotFound     = errors.New("group does not exist")
	ErrNamespaceNotFound = errors.New("group namespace does not exist")
)

// Store keeps rule files on local disk in Loki's layout:
// <dir>/<tenant>/<namespace>.yaml, each a Prometheus-format rule file.
// Files named <namespace>.yml or just <namespace> are read too (namespace
// = file name without .yaml/.yml); hidden files and directories are
// ignored. Writes replace a file atomically.
//
// A Store is safe for concurrent use; mu serialises read-modify-write.
type Store struct {
	dir string
	mu  sync.Mutex
}

// NewStore returns the store rooted at dir, creating dir.
func NewStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create rule directory: %w", err)
	}
	return &Store{dir: dir}, nil
}

// Dir is the store's root.
func (s *Store) Dir() string { return s.dir }

// Tenants lists the tenants that have a rule directory.
func (s *Store) Tenants() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list rule directory: %w", err)
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || tenant.ValidateID(e.Name()) != nil {
			continue
		}
		out = append(out, e.Name())
	}
	return out, nil
}

// nsFile is one namespace file of a tenant.
type nsFile struct {
	namespace string
	path      string
}

// namespaceFiles lists a tenant's namespace files, sorted by namespace.
func (s *Store) namespaceFiles(tenantID string) ([]nsFile, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, tenantID))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list rules of tenant %s: %w", tenantID, err)
	}
	var out []nsFile
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") {
			continue
		}
		ns := strings.TrimSuffix(strings.TrimSuffix(name, ".yaml"), ".yml")
		out = append(out, nsFile{namespace: ns, path: filepath.Join(s.dir, tenantID, name)})
	}
	slices.SortStableFunc(out, func(a, b nsFile) int { return strings.Compare(a.namespace, b.namespace) })
	return out, nil
}

// Namespace is the parsed content of one namespace file.
type Namespace struct {
	Name   string
	Path   string
	Groups []RuleGroup
	// Raw is the file content, to detect changes.
	Raw []byte
	// Err is set when the file could not be read or is invalid; Groups
	// is then empty.
	Err error
}

// Load reads and validates every namespace file of a tenant.
func (s *Store) Load(tenantID string, opts ValidationOptions) ([]Namespace, error) {
	files, err := s.namespaceFiles(tenantID)
	if err != nil {
		return nil, err
	}
	var out []Namespace
	seen := map[string]string{}
	for _, f := range files {
		ns := Namespace{Name: f.namespace, Path: f.path}
		if other, dup := seen[f.namespace]; dup {
			ns.Err = fmt.Errorf("%s: namespace %q is already defined by %s", f.path, f.namespace, other)
			out = append(out, ns)
			continue
		}
		seen[f.namespace] = f.path
		ns.Raw, ns.Err = os.ReadFile(f.path)
		if ns.Err == nil {
			var rgs RuleGroups
			rgs, ns.Err = ParseFile(f.path, ns.Raw, opts)
			if ns.Err == nil {
				ns.Groups = rgs.Groups
			}
		}
		out = append(out, ns)
	}
	return out, nil
}

// path returns the file of a namespace: an existing one if any, else
// <ns>.yaml.
func (s *Store) path(tenantID, ns string) (string, bool, error) {
	files, err := s.namespaceFiles(tenantID)
	if err != nil {
		return "", false, err
	}
	for _, f := range files {
		if f.namespace == ns {
			return f.path, true, nil
		}
	}
	return filepath.Join(s.dir, tenantID, ns+".yaml"), false, nil
}

// readNamespace returns the groups of one namespace without validating
// expressions beyond decoding (the API shows what is on disk).
func (s *Store) readNamespace(tenantID, ns string) ([]RuleGroup, string, error) {
	p, ok, err := s.path(tenantID, ns)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return nil, p, ErrNamespaceNotFound
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, p, fmt.Errorf("read rule file: %w", err)
	}
	var rgs RuleGroups
	if err := decodeKnown(b, &rgs); err != nil {
		return nil, p, yamlRuleError(p, err)
	}
	return rgs.Groups, p, nil
}

// SetGroup adds or replaces (by name) a group of a namespace.
func (s *Store) SetGroup(tenantID, ns string, g RuleGroup) error {
	if err := ValidateNamespace(ns); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	groups, p, err := s.readNamespace(tenantID, ns)
	if err != nil && !errors.Is(err, ErrNamespaceNotFound) {
		return err
	}
	i := slices.IndexFunc(groups, func(x RuleGroup) bool { return x.Name == g.Name })
	if i >= 0 {
		groups[i] = g
	} else {
		groups = append(groups, g)
	}
	return writeNamespace(p, groups)
}

// DeleteGroup removes one group; the file goes when it was the last.
func (s *Store) DeleteGroup(tenantID, ns, group string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	groups, p, err := s.readNamespace(tenantID, ns)
	if errors.Is(err, ErrNamespaceNotFound) {
		return ErrGroupNotFound
	}
	if err != nil {
		return err
	}
	i := slices.IndexFunc(groups, func(x RuleGroup) bool { return x.Name == group })
	if i < 0 {
		return ErrGroupNotFound
	}
	groups = slices.Delete(groups, i, i+1)
	if len(groups) == 0 {
		return removeFile(p)
	}
	return writeNamespace(p, groups)
}

// DeleteNamespace removes a namespace file.
func (s *Store) DeleteNamespace(tenantID, ns string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok, err := s.path(tenantID, ns)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNamespaceNotFound
	}
	return removeFile(p)
}

// List returns namespace → groups of a tenant as stored (files that do not
// decode are skipped with their error joined into the result's error).
func (s *Store) List(tenantID string) (map[string][]RuleGroup, error) {
	files, err := s.namespaceFiles(tenantID)
	if err != nil {
		return nil, err
	}
	out := map[string][]RuleGroup{}
	var errs []error
	for _, f := range files {
		groups, _, err := s.readNamespace(tenantID, f.namespace)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(groups) > 0 {
			out[f.namespace] = groups
		}
	}
	return out, errors.Join(errs...)
}

// Group returns one stored group.
func (s *Store) Group(tenantID, ns, group string) (RuleGroup, error) {
	groups, _, err := s.readNamespace(tenantID, ns)
	if errors.Is(err, ErrNamespaceNotFound) {
		return RuleGroup{}, ErrGroupNotFound
	}
	if err != nil {
		return RuleGroup{}, err
	}
	for _, g := range groups {
		if g.Name == group {
			return g, nil
		}
	}
	return RuleGroup{}, ErrGroupNotFound
}

// ValidateNamespace checks that a namespace can be a file name.
func ValidateNamespace(ns string) error {
	switch {
	case ns == "":
		return errors.New("namespace must not be empty")
	case len(ns) > 200:
		return errors.New("namespace is too long: max 200 characters")
	case strings.HasPrefix(ns, "."):
		return fmt.Errorf("namespace %q must not start with '.'", ns)
	case strings.ContainsAny(ns, "/\\\x00"):
		return fmt.Errorf("namespace %q must not contain '/', '\\' or NUL", ns)
	}
	return nil
}

func writeNamespace(p string, groups []RuleGroup) error {
	b, err := MarshalGroups(RuleGroups{Groups: groups})
	if err != nil {
		return fmt.Errorf("encode rule file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("create tenant rule directory: %w", err)
	}
	return writeFileAtomic(p, b)
}

func removeFile(p string) error {
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("remove rule file: %w", err)
	}
	return syncDir(filepath.Dir(p))
}

// writeFileAtomic writes b to p through a temporary file: write, fsync,
// rename, fsync the directory.
func writeFileAtomic(p string, b []byte) (err error) {
	dir := filepath.Dir(p)
	f, err := os.CreateTemp(dir, "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(b); err != nil {
		return errors.Join(fmt.Errorf("write %s: %w", tmp, err), f.Close())
	}
	if err := f.Sync(); err != nil {
		return errors.Join(fmt.Errorf("sync %s: %w", tmp, err), f.Close())
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("rename to %s: %w", p, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	if err := d.Sync(); err != nil {
		return errors.Join(fmt.Errorf("sync directory %s: %w", dir, err), d.Close())
	}
	return d.Close()
}

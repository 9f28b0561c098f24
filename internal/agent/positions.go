package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// FileID identifies one file independently of its path: the device and
// inode it lives on plus a fingerprint (xxhash64) of its first FPLen bytes
// (at most fingerprintSize). A reused inode is told apart by the
// fingerprint.
type FileID struct {
	Dev   uint64 `yaml:"dev"`
	Ino   uint64 `yaml:"ino"`
	FP    string `yaml:"fp"`
	FPLen int    `yaml:"fp_len"`
}

// IsZero reports whether the identity is unknown (a Promtail positions
// file carries none).
func (id FileID) IsZero() bool { return id.Dev == 0 && id.Ino == 0 }

// SameInode reports whether both identities name the same inode.
func (id FileID) SameInode(o FileID) bool { return id.Dev == o.Dev && id.Ino == o.Ino }

// Position is the acknowledged read offset of a file.
type Position struct {
	Offset int64
	ID     FileID
}

// positionsFile is the on-disk form. "positions" is Promtail's own map
// (path -> offset as a decimal string), so a Promtail positions file is read
// as is, and Promtail ignores the extra "files" key that holds identities.
type positionsFile struct {
	Positions map[string]string `yaml:"positions"`
	Files     map[string]FileID `yaml:"ledgerlog_files,omitempty"`
}

// Positions holds the acknowledged offsets of all tailed files and writes
// them to disk atomically every sync period.
//
// All methods are safe for concurrent use.
type Positions struct {
	path   string
	period time.Duration
	logger *slog.Logger

	changed chan struct{} // signalled by Put: acknowledged progress to write
	urgent  chan struct{} // signalled by WaitDurable: write now

	mu       sync.Mutex
	m        map[string]Position
	other    map[string]string // non-file keys (journal cursors, ...) kept verbatim
	dirty    bool
	gen      uint64        // guarded by mu; bumped by every change
	written  uint64        // guarded by mu; gen covered by the last write attempt
	writeEnd chan struct{} // guarded by mu; closed (and replaced) after each write attempt
}

// OpenPositions reads the positions file named in cfg (a missing file is an
// empty set). A corrupt file is an error unless cfg.IgnoreInvalidYaml.
func OpenPositions(cfg PositionsConfig, logger *slog.Logger) (*Positions, error) {
	p := &Positions{
		path:     cfg.Filename,
		period:   cfg.SyncPeriod.D(),
		logger:   logger,
		m:        map[string]Position{},
		other:    map[string]string{},
		changed:  make(chan struct{}, 1),
		urgent:   make(chan struct{}, 1),
		writeEnd: make(chan struct{}),
	}
	if p.period <= 0 {
		p.period = defaultPositionsSync
	}
	data, err := os.ReadFile(cfg.Filename)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return p, nil
	case err != nil:
		return nil, fmt.Errorf("read positions %s: %w", cfg.Filename, err)
	}
	var pf positionsFile
	if err := yaml.Unmarshal(data, &pf); err != nil {
		if cfg.IgnoreInvalidYaml {
			logger.Warn("ignoring invalid positions file", "path", cfg.Filename, "err", err)
			return p, nil
		}
		return nil, fmt.Errorf("parse positions %s: %w", cfg.Filename, err)
	}
	for k, v := range pf.Positions {
		off, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			p.other[k] = v // a cursor, not a byte offset
			continue
		}
		p.m[k] = Position{Offset: off, ID: pf.Files[k]}
	}
	return p, nil
}

// Get returns the acknowledged position of path.
func (p *Positions) Get(path string) (Position, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pos, ok := p.m[path]
	return pos, ok
}

// Put records an acknowledged position. Acknowledgements of one path
// arrive in read order, so the last one wins.
func (p *Positions) Put(path string, pos Position) {
	p.mu.Lock()
	p.m[path] = pos
	p.dirty = true
	p.gen++
	p.mu.Unlock()
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// Remove forgets path (its file is gone).
func (p *Positions) Remove(path string) {
	p.mu.Lock()
	if _, ok := p.m[path]; ok {
		delete(p.m, path)
		p.dirty = true
		p.gen++
	}
	p.mu.Unlock()
}

// Snapshot returns a copy of all file positions.
func (p *Positions) Snapshot() map[string]Position {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.m)
}

// maxSyncGap bounds the pause between two writes of acknowledged
// progress; syncDutyFactor sets the pause to that many times the last
// write's duration, so that writing the positions takes at most about
// 1/(1+syncDutyFactor) of the time under continuous acknowledgements.
const (
	maxSyncGap     = 100 * time.Millisecond
	syncDutyFactor = 4
)

// Run writes the positions until ctx is done, then writes them a last
// time. Acknowledged progress is written promptly: after an
// acknowledgement the next write starts once a pause of syncDutyFactor
// times the last write's duration (at most min(sync_period, 100ms)) has
// passed, so that a crash re-sends only the batches acknowledged during
// about one write. sync_period remains the upper bound between writes.
func (p *Positions) Run(ctx context.Context) error {
	t := time.NewTicker(p.period)
	defer t.Stop()
	var last time.Time
	var gap time.Duration
	write := func() {
		start := time.Now()
		if err := p.Sync(); err != nil {
			p.logger.Error("write positions", "path", p.path, "err", err)
		}
		last = time.Now()
		gap = min(p.period, maxSyncGap, syncDutyFactor*last.Sub(start))
	}
	for {
		select {
		case <-ctx.Done():
			return p.Sync()
		case <-t.C:
			write()
		case <-p.urgent:
			write()
		case <-p.changed:
			if wait := gap - time.Since(last); wait > 0 {
				select {
				case <-time.After(wait):
				case <-p.urgent:
				case <-ctx.Done():
					return p.Sync()
				}
			}
			write()
		}
	}
}

// WaitDurable blocks until every change made before the call was written
// (or its write failed and was logged), asking Run to write at once. It
// returns early when ctx is done. Run must be running.
//
// A client calls it after each acknowledged batch and before it sends the
// next, so that a crash re-sends at most the batches not yet acknowledged
// plus the one whose positions were being written.
func (p *Positions) WaitDurable(ctx context.Context) {
	p.mu.Lock()
	g := p.gen
	for p.written < g {
		ch := p.writeEnd
		p.mu.Unlock()
		select {
		case p.urgent <- struct{}{}:
		default:
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
		p.mu.Lock()
	}
	p.mu.Unlock()
}

// Sync writes the positions file if it changed: temp file, fsync, rename,
// fsync of the directory.
func (p *Positions) Sync() error {
	p.mu.Lock()
	g := p.gen
	defer func() {
		p.mu.Lock()
		p.written = max(p.written, g)
		close(p.writeEnd)
		p.writeEnd = make(chan struct{})
		p.mu.Unlock()
	}()
	if !p.dirty {
		p.mu.Unlock()
		return nil
	}
	pf := positionsFile{Positions: make(map[string]string, len(p.m)+len(p.other)), Files: map[string]FileID{}}
	maps.Copy(pf.Positions, p.other)
	for k, v := range p.m {
		pf.Positions[k] = strconv.FormatInt(v.Offset, 10)
		if !v.ID.IsZero() {
			pf.Files[k] = v.ID
		}
	}
	p.dirty = false
	p.mu.Unlock()

	data, err := yaml.Marshal(&pf)
	if err != nil {
		return fmt.Errorf("encode positions: %w", err)
	}
	if err := writeFileAtomic(p.path, data); err != nil {
		p.mu.Lock()
		p.dirty = true
		p.mu.Unlock()
		return err
	}
	return nil
}

// writeFileAtomic replaces path with data so that a crash leaves either the
// old or the new content.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create dir %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("create temp for %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return errors.Join(fmt.Errorf("write %s: %w", tmp, err), f.Close())
	}
	if err := f.Sync(); err != nil {
		return errors.Join(fmt.Errorf("sync %s: %w", tmp, err), f.Close())
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

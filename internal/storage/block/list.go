package block

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"
)

// ListTenants returns the sorted tenants that have a directory in bkt.
func ListTenants(ctx context.Context, bkt objstore.BucketReader) ([]string, error) {
	var out []string
	err := bkt.Iter(ctx, "", func(name string) error {
		if t, ok := strings.CutSuffix(name, "/"); ok && !strings.HasPrefix(t, ".") {
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	slices.Sort(out)
	return out, nil
}

// ListMetas returns the metas of the tenant's blocks that readers must
// query: complete (meta.json present and valid), not marked for deletion,
// not quarantined, and not superseded by a compacted block (see Scan). They
// are sorted by MinTime, then ULID. Blocks whose meta.json cannot be read
// are logged with slog.Default and skipped.
func ListMetas(ctx context.Context, bkt objstore.BucketReader, tenant string) ([]Meta, error) {
	s, err := ScanTenant(ctx, bkt, tenant, nil)
	if err != nil {
		return nil, err
	}
	return s.Live, nil
}

// Scan is the state of every block directory of one tenant.
type Scan struct {
	// Live blocks are the ones readers query, sorted by MinTime, ULID.
	Live []Meta
	// Superseded blocks are complete and unmarked, but another complete
	// block holds all their data (see docs/format/block.md).
	Superseded []Meta
	// Marked blocks carry a deletion mark. Meta is nil when meta.json is
	// already gone or unreadable; Mark is zero when the mark is unreadable.
	Marked []MarkedBlock
	// Quarantined blocks carry a quarantine mark. Meta is nil when
	// meta.json is missing or unreadable.
	Quarantined []QuarantinedBlock
	// Partial blocks have no meta.json (being written, or abandoned).
	Partial []ulid.ULID
	// Unreadable blocks have a meta.json that cannot be fetched or parsed.
	Unreadable []UnreadableBlock
}

// MarkedBlock is a block with a deletion mark.
type MarkedBlock struct {
	ID   ulid.ULID
	Mark DeletionMark
	Meta *Meta
}

// QuarantinedBlock is a block with a quarantine mark.
type QuarantinedBlock struct {
	ID   ulid.ULID
	Meta *Meta
}

// UnreadableBlock is a block whose meta.json could not be read.
type UnreadableBlock struct {
	ID  ulid.ULID
	Err error
}

// metaFetchers bounds concurrent meta.json fetches.
const metaFetchers = 16

// ScanTenant lists the tenant's directory once (recursively), fetches the
// meta.json and deletion mark of every block that has them, and classifies
// each block. Directory names that are not ULIDs are ignored. logger may be
// nil (slog.Default). It fails only when listing fails or ctx ends.
func ScanTenant(ctx context.Context, bkt objstore.BucketReader, tenant string, logger *slog.Logger) (*Scan, error) {
	if logger == nil {
		logger = slog.Default()
	}
	type entry struct {
		id                          ulid.ULID
		hasMeta, deleted, quarantin bool
		meta                        *Meta
		metaErr                     error
		mark                        DeletionMark
	}
	byID := map[ulid.ULID]*entry{}
	prefix := tenant + "/"
	err := bkt.Iter(ctx, prefix, func(name string) error {
		rest := strings.TrimPrefix(name, prefix)
		dir, file, ok := strings.Cut(rest, "/")
		if !ok {
			return nil
		}
		id, err := ulid.ParseStrict(dir)
		if err != nil {
			return nil
		}
		e := byID[id]
		if e == nil {
			e = &entry{id: id}
			byID[id] = e
		}
		switch file {
		case MetaFilename:
			e.hasMeta = true
		case DeletionMarkFilename:
			e.deleted = true
		case QuarantineMarkFilename:
			e.quarantin = true
		}
		return nil
	}, objstore.WithRecursiveIter())
	if err != nil {
		return nil, fmt.Errorf("scan blocks of tenant %s: %w", tenant, err)
	}

	// Fetch metas and marks concurrently.
	var (
		wg  sync.WaitGroup
		sem = make(chan struct{}, metaFetchers)
	)
	for _, e := range byID {
		if !e.hasMeta && !e.deleted {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if e.hasMeta {
				b, err := getAll(ctx, bkt, objectName(tenant, e.id, MetaFilename))
				if err == nil {
					var m Meta
					if m, err = parseMeta(b, tenant, e.id); err == nil {
						e.meta = &m
					}
				}
				if err != nil && bkt.IsObjNotFoundErr(err) {
					e.hasMeta = false // deleted since the listing
				} else {
					e.metaErr = err
				}
			}
			if e.deleted {
				m, err := ReadDeletionMark(ctx, bkt, tenant, e.id)
				if err != nil && bkt.IsObjNotFoundErr(err) {
					e.deleted = false
				} else if err != nil {
					logger.Warn("unreadable deletion mark", "tenant", tenant, "block", e.id, "err", err)
				}
				e.mark = m
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("scan blocks of tenant %s: %w", tenant, err)
	}

	s := &Scan{}
	// Candidates that may supersede others: every readable, unquarantined
	// meta, marked or not (a marked block's data lives on in the block that
	// replaced it, or was deleted on purpose).
	var all []*Meta
	for _, e := range byID {
		if e.meta != nil && !e.quarantin {
			all = append(all, e.meta)
		}
	}
	superseded := supersededSet(all)
	for _, e := range byID {
		switch {
		case e.quarantin:
			s.Quarantined = append(s.Quarantined, QuarantinedBlock{ID: e.id, Meta: e.meta})
		case e.deleted:
			s.Marked = append(s.Marked, MarkedBlock{ID: e.id, Mark: e.mark, Meta: e.meta})
		case !e.hasMeta:
			s.Partial = append(s.Partial, e.id)
		case e.metaErr != nil:
			logger.Warn("skipping block with unreadable meta.json", "tenant", tenant, "block", e.id, "err", e.metaErr)
			s.Unreadable = append(s.Unreadable, UnreadableBlock{ID: e.id, Err: e.metaErr})
		case superseded[e.id]:
			s.Superseded = append(s.Superseded, *e.meta)
		default:
			s.Live = append(s.Live, *e.meta)
		}
	}
	sortMetas(s.Live)
	sortMetas(s.Superseded)
	slices.SortFunc(s.Marked, func(a, b MarkedBlock) int { return a.ID.Compare(b.ID) })
	slices.SortFunc(s.Quarantined, func(a, b QuarantinedBlock) int { return a.ID.Compare(b.ID) })
	slices.SortFunc(s.Partial, ulid.ULID.Compare)
	slices.SortFunc(s.Unreadable, func(a, b UnreadableBlock) int { return a.ID.Compare(b.ID) })
	return s, nil
}

func sortMetas(ms []Meta) {
	slices.SortFunc(ms, func(a, b Meta) int {
		if a.MinTime != b.MinTime {
			if a.MinTime < b.MinTime {
				return -1
			}
			return 1
		}
		return a.ULID.Compare(b.ULID)
	})
}

// supersededSet returns the blocks whose sources are all held by another
// block that wins over them: one with more sources, or the same sources and
// a higher (level, ULID).
func supersededSet(metas []*Meta) map[ulid.ULID]bool {
	bySource := map[ulid.ULID][]*Meta{}
	for _, m := range metas {
		for _, src := range m.sources() {
			bySource[src] = append(bySource[src], m)
		}
	}
	out := map[ulid.ULID]bool{}
	for _, x := range metas {
		xs := x.sources()
		for _, y := range bySource[xs[0]] {
			if y.ULID != x.ULID && wins(y, x) && containsAll(y.sources(), xs) {
				out[x.ULID] = true
				break
			}
		}
	}
	return out
}

// wins reports whether y replaces x when y's sources include x's.
func wins(y, x *Meta) bool {
	ys, xs := len(y.sources()), len(x.sources())
	if ys != xs {
		return ys > xs
	}
	if y.Compaction.Level != x.Compaction.Level {
		return y.Compaction.Level > x.Compaction.Level
	}
	return y.ULID.Compare(x.ULID) > 0
}

// containsAll reports whether every element of sub is in set; both are
// sorted by the writer, but this does not rely on it.
func containsAll(set, sub []ulid.ULID) bool {
	for _, s := range sub {
		if !slices.Contains(set, s) {
			return false
		}
	}
	return true
}

package compactor

import (
	"cmp"
	"slices"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage/block"
)

// Planner decides which blocks to merge. It is pure: the same metas and
// time give the same plan, and it does no I/O.
type Planner struct {
	// SmallRange is the epoch-aligned range within which blocks of
	// different windows are merged when small; 0 disables it.
	SmallRange time.Duration
	// SmallMaxBytes bounds the total compressed size of such a merge.
	SmallMaxBytes int64
}

// Group is a set of blocks of one tenant to merge into one block covering
// Window.
type Group struct {
	Tenant string
	Window model.TimeRange
	Blocks []block.Meta
}

// Plan returns the groups to merge, sorted by tenant and window. It
// considers only windows that have ended at now, so blocks still being
// written for the current window are left alone. Two rules apply:
//
//  1. Two or more blocks of one tenant with the same window are merged into
//     one block with that window.
//  2. Otherwise, the blocks of one tenant whose windows lie inside one
//     SmallRange-aligned range are merged into one block with the whole
//     range as its window when there are two or more of them and together
//     they hold at most SmallMaxBytes compressed bytes. A range containing
//     a window that rule 1 merges waits for the next run.
//
// Each block is in at most one group.
func (p Planner) Plan(metas []block.Meta, now time.Time) []Group {
	nowNs := now.UnixNano()
	type key struct {
		tenant string
		window model.TimeRange
	}
	byWindow := map[key][]block.Meta{}
	for _, m := range metas {
		w := m.Window.Range()
		if w.Max > nowNs || w.Min >= w.Max {
			continue
		}
		k := key{m.Tenant, w}
		byWindow[k] = append(byWindow[k], m)
	}

	var groups []Group
	busyRange := map[key]bool{} // ranges containing a window merged by rule 1
	for k, ms := range byWindow {
		if len(ms) >= 2 {
			groups = append(groups, Group{Tenant: k.tenant, Window: k.window, Blocks: ms})
			if r, ok := p.rangeOf(k.window); ok {
				busyRange[key{k.tenant, r}] = true
			}
		}
	}

	if p.SmallRange > 0 {
		byRange := map[key][]block.Meta{}
		for k, ms := range byWindow {
			r, ok := p.rangeOf(k.window)
			if !ok || r.Max > nowNs {
				continue
			}
			rk := key{k.tenant, r}
			byRange[rk] = append(byRange[rk], ms...)
		}
		for rk, ms := range byRange {
			if len(ms) < 2 || busyRange[rk] {
				continue
			}
			var total int64
			for _, m := range ms {
				total += m.Stats.CompressedBytes
			}
			if total <= p.SmallMaxBytes {
				groups = append(groups, Group{Tenant: rk.tenant, Window: rk.window, Blocks: ms})
			}
		}
	}

	for i := range groups {
		slices.SortFunc(groups[i].Blocks, func(a, b block.Meta) int {
			return cmp.Or(cmp.Compare(a.MinTime, b.MinTime), a.ULID.Compare(b.ULID))
		})
	}
	slices.SortFunc(groups, func(a, b Group) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Window.Min, b.Window.Min), cmp.Compare(a.Window.Max, b.Window.Max))
	})
	return groups
}

// rangeOf returns the SmallRange-aligned range containing window w, if
// w lies inside one.
func (p Planner) rangeOf(w model.TimeRange) (model.TimeRange, bool) {
	if p.SmallRange <= 0 {
		return model.TimeRange{}, false
	}
	r := block.WindowFor(w.Min, p.SmallRange)
	if w.Max > r.Max {
		return model.TimeRange{}, false
	}
	return r, true
}

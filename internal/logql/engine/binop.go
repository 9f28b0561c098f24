package engine

import (
	"context"

	"github.com/prometheus/prometheus/model/labels"

	lql "github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/model"
)

// evalBinOp evaluates a binary operation (LQ-B1…B4) with Loki's semantics:
// a literal operand applies to every sample (a filtering comparison keeps
// the vector's value); two vectors are matched per step on their
// signatures, one-to-one unless group_left/group_right says otherwise.
func (ev *evaluator) evalBinOp(ctx context.Context, x *lql.BinOpExpr) (matrix, error) {
	ll, lok := x.Left.(*lql.LiteralExpr)
	rl, rok := x.Right.(*lql.LiteralExpr)
	filter := x.Op.IsComparison() && !x.ReturnBool
	if lok || rok {
		other := x.Left
		if lok {
			other = x.Right
		}
		m, err := ev.eval(ctx, other, hint{})
		if err != nil {
			return nil, err
		}
		out := m[:0]
		for _, s := range m {
			pts := s.points[:0]
			for _, p := range s.points {
				var v float64
				var keep bool
				if lok {
					v, keep = applyOp(x.Op, ll.Value, p.v, filter)
					if filter {
						v = p.v
					}
				} else {
					v, keep = applyOp(x.Op, p.v, rl.Value, filter)
				}
				if keep {
					pts = append(pts, point{k: p.k, v: v})
				}
			}
			if len(pts) > 0 {
				out = append(out, series{labels: s.labels, points: pts})
			}
		}
		return out, nil
	}
	lm, err := ev.eval(ctx, x.Left, hint{})
	if err != nil {
		return nil, err
	}
	rm, err := ev.eval(ctx, x.Right, hint{})
	if err != nil {
		return nil, err
	}
	vm := x.Matching
	lsigs, rsigs := signatures(lm, vm), signatures(rm, vm)
	loffs, lrefs := byStep(lm, ev.g.n)
	roffs, rrefs := byStep(rm, ev.g.n)
	if x.Op.IsSetOperator() {
		return ev.setOp(x.Op, lm, rm, lsigs, rsigs, loffs, lrefs, roffs, rrefs), nil
	}
	card := lql.OneToOne
	if vm != nil {
		card = vm.Card
	}
	// One-to-many is many-to-one with the sides swapped.
	oneM, manyM, oneSigs, manySigs := rm, lm, rsigs, lsigs
	oneOffs, oneRefs, manyOffs, manyRefs := roffs, rrefs, loffs, lrefs
	side := "right"
	if card == lql.OneToMany {
		oneM, manyM, oneSigs, manySigs = lm, rm, lsigs, rsigs
		oneOffs, oneRefs, manyOffs, manyRefs = loffs, lrefs, roffs, rrefs
		side = "left"
	}
	out := newSeriesSet()
	metrics := map[uint64]int32{} // (many, one) series pair -> output series
	oneBySig := map[uint64]stepRef{}
	matched := map[uint64]map[uint64]struct{}{}
	b := labels.NewBuilder(model.EmptyLabels())
	for k := 0; k < ev.g.n; k++ {
		if k&255 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		clear(oneBySig)
		clear(matched)
		for _, r := range oneRefs[oneOffs[k]:oneOffs[k+1]] {
			sig := oneSigs[r.s]
			if _, dup := oneBySig[sig]; dup {
				return nil, Userf("found duplicate series on the " + side + " hand-side;many-to-many matching not allowed: matching labels must be unique on one side")
			}
			oneBySig[sig] = r
		}
		for _, mr := range manyRefs[manyOffs[k]:manyOffs[k+1]] {
			sig := manySigs[mr.s]
			or, ok := oneBySig[sig]
			if !ok {
				continue
			}
			pair := uint64(mr.s)<<32 | uint64(uint32(or.s))
			oi, ok := metrics[pair]
			if !ok {
				oi = out.id(resultMetric(manyM[mr.s].labels, oneM[or.s].labels, vm, b))
				metrics[pair] = oi
			}
			inserted, exists := matched[sig]
			if card == lql.OneToOne {
				if exists {
					return nil, Userf("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)")
				}
				matched[sig] = nil
			} else {
				h := uint64(oi)
				if !exists {
					inserted = map[uint64]struct{}{}
					matched[sig] = inserted
				} else if _, dup := inserted[h]; dup {
					return nil, Userf("multiple matches for labels: grouping labels must ensure unique matches")
				}
				inserted[h] = struct{}{}
			}
			lv, rv := mr.v, or.v
			if card == lql.OneToMany {
				lv, rv = rv, lv
			}
			if v, keep := applyOp(x.Op, lv, rv, filter); keep {
				out.add(oi, k, v)
			}
		}
	}
	return out.out, nil
}

// signatures returns the matching signature of every series.
func signatures(m matrix, vm *lql.VectorMatching) []uint64 {
	sigs := make([]uint64, len(m))
	var buf []byte
	for i, s := range m {
		switch {
		case vm == nil:
			sigs[i] = s.labels.Hash()
		case vm.On:
			sigs[i], buf = s.labels.HashForLabels(buf, vm.Labels...)
		default:
			sigs[i], buf = s.labels.HashWithoutLabels(buf, vm.Labels...)
		}
	}
	return sigs
}

// resultMetric is the label set of a matched pair: the many (or, one to
// one, left) side's labels reduced by on/ignoring, plus the include labels
// of group_left/group_right taken from the one side.
func resultMetric(many, one model.Labels, vm *lql.VectorMatching, b *labels.Builder) model.Labels {
	if vm == nil {
		return many
	}
	b.Reset(many)
	if vm.Card == lql.OneToOne {
		if vm.On {
			many.Range(func(l model.Label) {
				for _, n := range vm.Labels {
					if n == l.Name {
						return
					}
				}
				b.Del(l.Name)
			})
		} else {
			b.Del(vm.Labels...)
		}
	}
	for _, n := range vm.Include {
		if v := one.Get(n); v != "" {
			b.Set(n, v)
		} else {
			b.Del(n)
		}
	}
	return b.Labels()
}

// setOp evaluates and, or and unless per step (LQ-B3).
func (ev *evaluator) setOp(op lql.BinOp, lm, rm matrix, lsigs, rsigs []uint64, loffs []int32, lrefs []stepRef, roffs []int32, rrefs []stepRef) matrix {
	out := newSeriesSet()
	lid := make([]int32, len(lm))
	for i := range lid {
		lid[i] = -1
	}
	rid := make([]int32, len(rm))
	for i := range rid {
		rid[i] = -1
	}
	emit := func(ids []int32, m matrix, r stepRef, k int) {
		if ids[r.s] < 0 {
			ids[r.s] = out.id(m[r.s].labels)
		}
		out.add(ids[r.s], k, r.v)
	}
	sigs := map[uint64]struct{}{}
	for k := 0; k < ev.g.n; k++ {
		lv, rv := lrefs[loffs[k]:loffs[k+1]], rrefs[roffs[k]:roffs[k+1]]
		clear(sigs)
		switch op {
		case lql.OpAnd:
			if len(lv) == 0 || len(rv) == 0 {
				continue
			}
			for _, r := range rv {
				sigs[rsigs[r.s]] = struct{}{}
			}
			for _, r := range lv {
				if _, ok := sigs[lsigs[r.s]]; ok {
					emit(lid, lm, r, k)
				}
			}
		case lql.OpOr:
			for _, r := range lv {
				sigs[lsigs[r.s]] = struct{}{}
				emit(lid, lm, r, k)
			}
			for _, r := range rv {
				if _, ok := sigs[rsigs[r.s]]; !ok || len(lv) == 0 {
					emit(rid, rm, r, k)
				}
			}
		case lql.OpUnless:
			if len(rv) > 0 {
				for _, r := range rv {
					sigs[rsigs[r.s]] = struct{}{}
				}
			}
			for _, r := range lv {
				if _, ok := sigs[lsigs[r.s]]; !ok {
					emit(lid, lm, r, k)
				}
			}
		}
	}
	return out.out
}

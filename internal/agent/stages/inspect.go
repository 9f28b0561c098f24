package stages

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// inspector prints what a stage changed in an entry, in the spirit of
// Promtail's -inspect output:
//
//	[inspect: regex stage]:
//	{stages.Entry}.Extracted["level"]:
//		+: info
type inspector struct {
	w io.Writer
}

func (in *inspector) report(stage string, before, after *Entry, kept bool) {
	var b strings.Builder
	fmt.Fprintf(&b, "[inspect: %s stage]: ", stage)
	if !kept {
		b.WriteString("dropped\n")
		_, _ = io.WriteString(in.w, b.String())
		return
	}
	diffs := entryDiff(before, after)
	if len(diffs) == 0 {
		b.WriteString("none\n")
	} else {
		b.WriteString("\n")
		for _, d := range diffs {
			b.WriteString(d)
			b.WriteString("\n")
		}
	}
	_, _ = io.WriteString(in.w, b.String())
}

func entryDiff(a, b *Entry) []string {
	var out []string
	add := func(path string, old, new any, hadOld, hasNew bool) {
		out = append(out, "{stages.Entry}."+path+":")
		if hadOld {
			out = append(out, fmt.Sprintf("\t-: %v", old))
		}
		if hasNew {
			out = append(out, fmt.Sprintf("\t+: %v", new))
		}
	}
	mapDiff := func(field string, x, y map[string]any) {
		keys := make([]string, 0, len(x)+len(y))
		for k := range x {
			keys = append(keys, k)
		}
		for k := range y {
			if _, ok := x[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			xv, xok := x[k]
			yv, yok := y[k]
			if xok == yok && fmt.Sprint(xv) == fmt.Sprint(yv) {
				continue
			}
			add(fmt.Sprintf("%s[%q]", field, k), xv, yv, xok, yok)
		}
	}
	mapDiff("Labels", labelsAny(a.Labels), labelsAny(b.Labels))
	mapDiff("Extracted", a.Extracted, b.Extracted)
	if !a.Timestamp.Equal(b.Timestamp) {
		add("Timestamp", a.Timestamp.Format(time.RFC3339Nano), b.Timestamp.Format(time.RFC3339Nano), true, true)
	}
	if a.Line != b.Line {
		add("Line", a.Line, b.Line, true, true)
	}
	mapDiff("StructuredMetadata", stringsAny(a.StructuredMetadata), stringsAny(b.StructuredMetadata))
	if a.Tenant != b.Tenant {
		add("Tenant", a.Tenant, b.Tenant, a.Tenant != "", b.Tenant != "")
	}
	return out
}

func labelsAny(ls model.LabelSet) map[string]any {
	m := make(map[string]any, len(ls))
	for k, v := range ls {
		m[string(k)] = string(v)
	}
	return m
}

func stringsAny(ss map[string]string) map[string]any {
	m := make(map[string]any, len(ss))
	for k, v := range ss {
		m[k] = v
	}
	return m
}

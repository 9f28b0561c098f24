package querycli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Output formats.
const (
	FormatDefault = "default" // <timestamp> <labels> <line>
	FormatRaw     = "raw"     // the line only
	FormatJSONL   = "jsonl"   // {"labels":{…},"line":"…","timestamp":"…"} per line
)

// Output writes results in one format. It buffers: call Flush at the end.
// It is not safe for concurrent use.
type Output struct {
	w        *bufio.Writer
	format   string
	tz       *time.Location
	noLabels bool
}

// NewOutput returns an output in format (default, raw or jsonl) that
// prints timestamps in tz.
func NewOutput(w io.Writer, format string, tz *time.Location, noLabels bool) (*Output, error) {
	switch format {
	case "", FormatDefault:
		format = FormatDefault
	case FormatRaw, FormatJSONL:
	default:
		return nil, fmt.Errorf("unknown output format %q: use default, raw or jsonl", format)
	}
	if tz == nil {
		tz = time.UTC
	}
	return &Output{w: bufio.NewWriterSize(w, 64<<10), format: format, tz: tz, noLabels: noLabels}, nil
}

// Entry writes one log entry.
func (o *Output) Entry(e Entry) error {
	var err error
	switch o.format {
	case FormatRaw:
		_, err = o.w.WriteString(e.Line + "\n")
	case FormatJSONL:
		var b []byte
		b, err = json.Marshal(struct {
			Labels    map[string]string `json:"labels"`
			Line      string            `json:"line"`
			Timestamp string            `json:"timestamp"`
		}{e.Labels, e.Line, e.Timestamp.In(o.tz).Format(time.RFC3339Nano)})
		if err == nil {
			b = append(b, '\n')
			_, err = o.w.Write(b)
		}
	default:
		ts := e.Timestamp.In(o.tz).Format(time.RFC3339Nano)
		if o.noLabels {
			_, err = fmt.Fprintf(o.w, "%s %s\n", ts, e.Line)
		} else {
			_, err = fmt.Fprintf(o.w, "%s %s %s\n", ts, labelsString(e.Labels), e.Line)
		}
	}
	return err
}

// Strings writes one value per line.
func (o *Output) Strings(ss []string) error {
	for _, s := range ss {
		if _, err := o.w.WriteString(s + "\n"); err != nil {
			return err
		}
	}
	return nil
}

// Series writes label sets, one per line ({…} or, in jsonl, a JSON object).
func (o *Output) Series(series []map[string]string) error {
	for _, s := range series {
		if o.format == FormatJSONL {
			b, err := json.Marshal(s)
			if err != nil {
				return err
			}
			if _, err := o.w.Write(append(b, '\n')); err != nil {
				return err
			}
			continue
		}
		if _, err := o.w.WriteString(labelsString(s) + "\n"); err != nil {
			return err
		}
	}
	return nil
}

// Metric writes a metric result (vector, matrix or scalar): indented JSON
// of the result, or in jsonl one series per line.
func (o *Output) Metric(r *Response) error {
	if o.format == FormatJSONL && (r.Data.ResultType == "vector" || r.Data.ResultType == "matrix") {
		var series []json.RawMessage
		if err := json.Unmarshal(r.Data.Result, &series); err != nil {
			return fmt.Errorf("decode %s: %w", r.Data.ResultType, err)
		}
		for _, s := range series {
			var buf bytes.Buffer
			if err := json.Compact(&buf, s); err != nil {
				return err
			}
			buf.WriteByte('\n')
			if _, err := o.w.Write(buf.Bytes()); err != nil {
				return err
			}
		}
		return nil
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, r.Data.Result, "", "  "); err != nil {
		return fmt.Errorf("decode %s: %w", r.Data.ResultType, err)
	}
	buf.WriteByte('\n')
	_, err := o.w.Write(buf.Bytes())
	return err
}

// Text writes free text.
func (o *Output) Text(s string) error {
	_, err := o.w.WriteString(s)
	return err
}

// Flush writes out what is buffered.
func (o *Output) Flush() error { return o.w.Flush() }

// AnalyzeLabels summarises series as logcli's --analyze-labels does: per
// label name, the number of distinct values and of streams carrying it,
// most distinct values first.
func AnalyzeLabels(series []map[string]string) string {
	type stat struct {
		name    string
		values  map[string]int
		streams int
	}
	byName := map[string]*stat{}
	for _, s := range series {
		for n, v := range s {
			st := byName[n]
			if st == nil {
				st = &stat{name: n, values: map[string]int{}}
				byName[n] = st
			}
			st.values[v]++
			st.streams++
		}
	}
	stats := make([]*stat, 0, len(byName))
	for _, st := range byName {
		stats = append(stats, st)
	}
	sort.Slice(stats, func(i, j int) bool {
		if len(stats[i].values) != len(stats[j].values) {
			return len(stats[i].values) > len(stats[j].values)
		}
		return stats[i].name < stats[j].name
	})
	var b strings.Builder
	fmt.Fprintf(&b, "Total Streams:  %d\nUnique Labels:  %d\n\n", len(series), len(stats))
	fmt.Fprintf(&b, "%-30s %14s %14s\n", "Label Name", "Unique Values", "Found In Streams")
	for _, st := range stats {
		fmt.Fprintf(&b, "%-30s %14d %14d\n", st.name, len(st.values), st.streams)
	}
	return b.String()
}

// FormatBytes renders a byte count for people (1.2 MB).
func FormatBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

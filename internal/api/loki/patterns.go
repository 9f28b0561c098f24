package loki

import (
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/logql/engine"
	"github.com/ledgerlog/ledgerlog/internal/model"
)

// Pattern detection limits.
const (
	patternMaxLines      = 50000 // newest lines of the range that are clustered
	patternMaxResults    = 500   // patterns answered, most frequent first
	patternMaxTokens     = 64    // tokens per line; the rest of a longer line is one token
	patternMaxClusters   = 200   // clusters per (level, length, first token) group
	patternSimilarity    = 0.4   // fraction of equal tokens for a line to join a cluster (Drain's default)
	patternWildcard      = "<_>"
	patternLevelMetadata = "detected_level"
)

// patterns serves /loki/api/v1/patterns: log patterns of the query's
// lines in [start, end) with their count per step, most frequent first.
// Patterns are clustered on demand from the stored lines (the newest
// 50,000 of the range) with a Drain-style token clustering, per
// detected_level; a pattern's variable parts are <_>, so that it can be
// used as a `|> "<pattern>"` line filter. Counts are exact for the lines
// clustered.
func (a *API) patterns(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	tenants, err := a.opts.Tenants.Read(r)
	if err != nil {
		status, msg := errorStatus(err)
		writeError(w, status, msg)
		return
	}
	q := r.Form.Get("query")
	if q == "" {
		writeError(w, http.StatusBadRequest, "query parameter is required")
		return
	}
	start, end, err := bounds(r, a.opts.Now(), queryRangeDefaultSince)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if end < start {
		writeError(w, http.StatusBadRequest, "end timestamp must not be before or equal to start time")
		return
	}
	step, ok, err := durationParam(r, "step")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !ok {
		step = time.Duration(math.Max(float64(time.Duration(end-start)/250/time.Second), 1)) * time.Second
	}
	if step <= 0 {
		writeError(w, http.StatusBadRequest, "zero or negative query resolution step widths are not accepted. Try a positive integer")
		return
	}
	d := newDrain()
	err = a.scan(r.Context(), scanRequest{tenants: tenants, query: q, start: start, end: end, dir: model.Backward, max: patternMaxLines},
		func(ls model.Labels, e *engine.Entry) bool {
			level := e.Metadata.Get(patternLevelMetadata)
			if level == "" {
				level = ls.Get(patternLevelMetadata)
			}
			d.add(level, e.Line, e.Timestamp/step.Nanoseconds()*step.Nanoseconds())
			return true
		})
	if err != nil {
		a.writeEngineError(w, q, err)
		return
	}
	writeRaw(w, appendPatterns(nil, d.results(patternMaxResults)))
}

func appendPatterns(dst []byte, ps []patternResult) []byte {
	dst = append(dst, `{"status":"success","data":[`...)
	for i, p := range ps {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"pattern":`...)
		dst = appendJSONString(dst, p.pattern)
		if p.level != "" {
			dst = append(dst, `,"level":`...)
			dst = appendJSONString(dst, p.level)
		}
		dst = append(dst, `,"samples":[`...)
		for j, s := range p.samples {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '[')
			dst = appendUnixSeconds(dst, s.ts/int64(time.Millisecond))
			dst = append(dst, ',')
			dst = strconv.AppendInt(dst, s.count, 10)
			dst = append(dst, ']')
		}
		dst = append(dst, "]}"...)
	}
	return append(dst, "]}\n"...)
}

// patternToken is one token of a line: its text and the delimiter that
// followed it in the line (0 at the end of the line). Concatenating text
// and delimiters of all tokens gives the line back.
type patternToken struct {
	text  string
	delim byte
}

func isPatternDelim(c byte) bool { return c == ' ' || c == '\t' || c == '=' || c == ',' }

// tokenizePattern splits a line after every space, tab, '=' and ','; a
// line with more than max tokens has its rest in the last token.
func tokenizePattern(line string, max int) []patternToken {
	var out []patternToken
	start := 0
	for i := 0; i < len(line); i++ {
		if !isPatternDelim(line[i]) {
			continue
		}
		if len(out) == max-1 {
			break
		}
		out = append(out, patternToken{text: line[start:i], delim: line[i]})
		start = i + 1
	}
	return append(out, patternToken{text: line[start:]})
}

// hasDigit reports whether s has an ASCII digit: such tokens are likely
// variable and do not choose a cluster group.
func hasDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			return true
		}
	}
	return false
}

// patternCluster is a template: tokens where wild positions vary.
type patternCluster struct {
	level   string
	tokens  []patternToken
	wild    []bool
	count   int64
	samples map[int64]int64 // step start (ns) → lines
}

type drainGroupKey struct {
	level string
	n     int
	first patternToken
}

// drain clusters log lines into templates, after Drain (He et al., 2017):
// lines are grouped by level, token count and first token, and a line
// joins the most similar template of its group when at least
// patternSimilarity of the positions are equal, turning differing
// positions into wildcards. Not safe for concurrent use.
type drain struct {
	groups map[drainGroupKey][]*patternCluster
}

func newDrain() *drain { return &drain{groups: map[drainGroupKey][]*patternCluster{}} }

func (d *drain) add(level, line string, step int64) {
	toks := tokenizePattern(line, patternMaxTokens)
	key := drainGroupKey{level: level, n: len(toks), first: toks[0]}
	if hasDigit(key.first.text) {
		key.first.text = patternWildcard
	}
	group := d.groups[key]
	var best *patternCluster
	bestSim, bestWild := -1.0, -1
	for _, c := range group {
		same, wild := 0, 0
		for i, t := range toks {
			switch {
			case c.wild[i]:
				wild++
			case c.tokens[i] == t:
				same++
			}
		}
		sim := float64(same) / float64(len(toks))
		if sim > bestSim || sim == bestSim && wild > bestWild {
			best, bestSim, bestWild = c, sim, wild
		}
	}
	if best == nil || bestSim < patternSimilarity && len(group) < patternMaxClusters {
		c := &patternCluster{level: level, tokens: toks, wild: make([]bool, len(toks)), samples: map[int64]int64{}}
		for i, t := range toks {
			// A literal such as <name> would read as a capture in a
			// pattern filter.
			c.wild[i] = strings.Contains(t.text, "<") && strings.Contains(t.text, ">")
		}
		d.groups[key] = append(group, c)
		best = c
	} else {
		for i, t := range toks {
			if best.tokens[i].delim != t.delim {
				// Lines disagree on the delimiter: the wildcard absorbs it.
				best.wild[i] = true
				best.tokens[i].delim = 0
			} else if best.tokens[i].text != t.text {
				best.wild[i] = true
			}
		}
	}
	best.count++
	best.samples[step]++
}

// pattern renders the template: wildcards as <_>, adjacent wildcards with
// no literal text between them merged.
func (c *patternCluster) pattern() string {
	var b strings.Builder
	lastWild := false
	for i, t := range c.tokens {
		if c.wild[i] {
			if !lastWild {
				b.WriteString(patternWildcard)
			}
			lastWild = true
		} else if t.text != "" {
			b.WriteString(t.text)
			lastWild = false
		}
		if t.delim != 0 {
			b.WriteByte(t.delim)
			lastWild = false
		}
	}
	return b.String()
}

type patternSample struct {
	ts    int64 // ns
	count int64
}

type patternResult struct {
	pattern string
	level   string
	count   int64
	samples []patternSample
}

// results returns at most max patterns, most frequent first. Templates
// that render to the same pattern are merged; patterns without literal
// text are left out.
func (d *drain) results(max int) []patternResult {
	byPattern := map[string]*patternResult{}
	samples := map[string]map[int64]int64{}
	for _, group := range d.groups {
		for _, c := range group {
			p := c.pattern()
			if strings.TrimSpace(strings.ReplaceAll(p, patternWildcard, "")) == "" {
				continue
			}
			k := c.level + "\x00" + p
			r := byPattern[k]
			if r == nil {
				r = &patternResult{pattern: p, level: c.level}
				byPattern[k] = r
				samples[k] = map[int64]int64{}
			}
			r.count += c.count
			for ts, n := range c.samples {
				samples[k][ts] += n
			}
		}
	}
	out := make([]patternResult, 0, len(byPattern))
	for k, r := range byPattern {
		for ts, n := range samples[k] {
			r.samples = append(r.samples, patternSample{ts: ts, count: n})
		}
		sort.Slice(r.samples, func(i, j int) bool { return r.samples[i].ts < r.samples[j].ts })
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].count != out[j].count {
			return out[i].count > out[j].count
		}
		if out[i].pattern != out[j].pattern {
			return out[i].pattern < out[j].pattern
		}
		return out[i].level < out[j].level
	})
	if len(out) > max {
		out = out[:max]
	}
	return out
}

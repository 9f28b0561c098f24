package index

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
)

func mustLabels(t testing.TB, s string) model.Labels {
	t.Helper()
	ls, err := model.ParseLabels(s)
	require.NoError(t, err)
	return ls
}

// testStreams returns a small set of streams in a scrambled order.
func testStreams(t testing.TB) []Stream {
	t.Helper()
	in := []string{
		`{app="web", env="prod", pod="web-1"}`,
		`{app="api", env="prod"}`,
		`{app="web", env="dev"}`,
		`{job="cron"}`,
		`{app="api", env="dev", pod="api-7"}`,
		`{app="db", env="prod", region="eu"}`,
	}
	var out []Stream
	for i, s := range in {
		out = append(out, Stream{
			Labels: mustLabels(t, s),
			Chunks: []ChunkRef{
				{Segment: 1, Offset: int64(100 * i), Length: 40, MinTime: int64(5000 + i), MaxTime: int64(6000 + i), Entries: 3, UncompressedBytes: 120},
				{Segment: 2, Offset: int64(8 + 50*i), Length: 50, MinTime: int64(-1000 + i), MaxTime: int64(10 + i), Entries: 7, UncompressedBytes: 300},
			},
		})
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	streams := testStreams(t)
	b, err := Encode(streams)
	require.NoError(t, err)
	ix, err := Decode(b)
	require.NoError(t, err)
	require.Equal(t, len(streams), ix.Len())
	for i, s := range ix.Streams() {
		require.Equal(t, streams[i].Labels.String(), s.Labels.String())
		require.Equal(t, s.Labels.Hash(), s.Fingerprint)
		require.Equal(t, streams[i].Chunks, s.Chunks)
		// Chunks come back sorted by time.
		require.Less(t, s.Chunks[0].MinTime, s.Chunks[1].MinTime)
		if i > 0 {
			require.Less(t, ix.Stream(i-1).Labels.String(), s.Labels.String())
		}
	}
	require.Equal(t, []string{"app", "env", "job", "pod", "region"}, ix.LabelNamesAll())
	require.Equal(t, []string{"api", "db", "web"}, ix.LabelValues("app", nil))
	require.Len(t, ix.Postings("env", "prod"), 3)
	require.Nil(t, ix.Postings("env", "nope"))
	require.Nil(t, ix.Postings("nope", "x"))
}

func TestEncodeRejects(t *testing.T) {
	f := func(name string, s []Stream) {
		t.Helper()
		_, err := Encode(s)
		require.Error(t, err, name)
	}
	ok := ChunkRef{Segment: 1, Length: 1, Entries: 1}
	f("no labels", []Stream{{Labels: model.EmptyLabels(), Chunks: []ChunkRef{ok}}})
	f("no chunks", []Stream{{Labels: mustLabels(t, `{a="b"}`)}})
	f("empty value", []Stream{{Labels: model.LabelsFromStrings("a", "b", "c", ""), Chunks: []ChunkRef{ok}}})
	f("duplicate", []Stream{{Labels: mustLabels(t, `{a="b"}`), Chunks: []ChunkRef{ok}}, {Labels: mustLabels(t, `{a="b"}`), Chunks: []ChunkRef{ok}}})
	f("segment 0", []Stream{{Labels: mustLabels(t, `{a="b"}`), Chunks: []ChunkRef{{Length: 1, Entries: 1}}}})
	f("no entries", []Stream{{Labels: mustLabels(t, `{a="b"}`), Chunks: []ChunkRef{{Segment: 1, Length: 1}}}})
	f("max before min", []Stream{{Labels: mustLabels(t, `{a="b"}`), Chunks: []ChunkRef{{Segment: 1, Entries: 1, MinTime: 5, MaxTime: 4}}}})
}

func TestEmptyIndex(t *testing.T) {
	b, err := Encode(nil)
	require.NoError(t, err)
	ix, err := Decode(b)
	require.NoError(t, err)
	require.Equal(t, 0, ix.Len())
	require.Empty(t, ix.Select(nil))
	m, _ := model.NewMatcher(model.MatchRegexp, "a", ".*")
	require.Empty(t, ix.Select([]*model.Matcher{m}))
}

func TestExtremeTimes(t *testing.T) {
	s := []Stream{{Labels: mustLabels(t, `{a="b"}`), Chunks: []ChunkRef{
		{Segment: 1, Entries: 1, MinTime: math.MinInt64, MaxTime: math.MaxInt64},
		{Segment: math.MaxInt32, Offset: math.MaxInt64, Length: math.MaxInt32, Entries: math.MaxInt32, MinTime: math.MaxInt64, MaxTime: math.MaxInt64},
	}}}
	b, err := Encode(s)
	require.NoError(t, err)
	ix, err := Decode(b)
	require.NoError(t, err)
	require.Equal(t, s[0].Chunks, ix.Stream(0).Chunks)
}

// TestMatchers checks Prometheus semantics, including matchers that match
// the empty string and so select streams without the label.
func TestMatchers(t *testing.T) {
	b, err := Encode(testStreams(t))
	require.NoError(t, err)
	ix, err := Decode(b)
	require.NoError(t, err)

	f := func(selector string, want ...string) {
		t.Helper()
		ms := parseMatchers(t, selector)
		var got []string
		for _, id := range ix.Select(ms) {
			got = append(got, ix.Stream(int(id)).Labels.String())
		}
		var wantNorm []string
		for _, w := range want {
			wantNorm = append(wantNorm, mustLabels(t, w).String())
		}
		require.Equal(t, wantNorm, got, selector)
		// The index agrees with matching each stream's labels directly.
		var brute []string
		for _, s := range ix.Streams() {
			if model.MatchLabels(s.Labels, ms) {
				brute = append(brute, s.Labels.String())
			}
		}
		require.Equal(t, brute, got, selector)
	}
	api := `{app="api", env="prod"}`
	apiDev := `{app="api", env="dev", pod="api-7"}`
	db := `{app="db", env="prod", region="eu"}`
	webDev := `{app="web", env="dev"}`
	web := `{app="web", env="prod", pod="web-1"}`
	cron := `{job="cron"}`

	f(``, apiDev, api, db, webDev, web, cron)
	f(`app="api"`, apiDev, api)
	f(`app="nope"`)
	f(`nope="x"`)
	f(`app!="api"`, db, webDev, web, cron) // a missing app is "" != "api"
	f(`app=~"a.*|d.*"`, apiDev, api, db)
	f(`app=~"api|db"`, apiDev, api, db)
	f(`app!~"api|db"`, webDev, web, cron)
	f(`app!~"a.*"`, db, webDev, web, cron)
	f(`app=~".*"`, apiDev, api, db, webDev, web, cron)
	f(`app=~".+"`, apiDev, api, db, webDev, web)
	f(`app=""`, cron)
	f(`app!=""`, apiDev, api, db, webDev, web)
	f(`pod=~""`, api, db, webDev, cron)
	f(`pod!~".+"`, api, db, webDev, cron)
	f(`nope=""`, apiDev, api, db, webDev, web, cron)
	f(`nope!=""`)
	f(`nope=~".*"`, apiDev, api, db, webDev, web, cron)
	f(`app=~".*", env="prod"`, api, db, web)
	f(`env="prod", app!="web", region=""`, api)
	f(`env=~"prod|dev", app=~"w.b"`, webDev, web)
	f(`app="api", env="prod", pod=""`, api)
	f(`app="api", env="nope"`)
	f(`app=~"(?i)API"`, apiDev, api)
}

func TestLabelNamesAndValues(t *testing.T) {
	b, err := Encode(testStreams(t))
	require.NoError(t, err)
	ix, err := Decode(b)
	require.NoError(t, err)

	require.Equal(t, []string{"app", "env", "pod"}, ix.LabelNames(parseMatchers(t, `app="web"`)))
	require.Equal(t, []string{"job"}, ix.LabelNames(parseMatchers(t, `app=""`)))
	require.Empty(t, ix.LabelNames(parseMatchers(t, `app="nope"`)))
	require.Equal(t, []string{"dev", "prod"}, ix.LabelValues("env", parseMatchers(t, `app="api"`)))
	require.Equal(t, []string{"prod"}, ix.LabelValues("env", parseMatchers(t, `pod=""`, `app=~"a.*|d.*"`)))
	require.Nil(t, ix.LabelValues("nope", nil))
	require.Empty(t, ix.LabelValues("app", parseMatchers(t, `job="cron"`)))
}

func parseMatchers(t testing.TB, ss ...string) []*model.Matcher {
	t.Helper()
	var out []*model.Matcher
	for _, s := range ss {
		if s == "" {
			continue
		}
		// A tiny parser for test selectors: name op "value", comma separated.
		for _, part := range splitTop(s) {
			var op model.MatchType
			var name, value string
			for i := 0; i < len(part); i++ {
				c := part[i]
				if c == '=' || c == '!' {
					name = trim(part[:i])
					rest := part[i:]
					switch {
					case len(rest) > 1 && rest[:2] == "=~":
						op, rest = model.MatchRegexp, rest[2:]
					case len(rest) > 1 && rest[:2] == "!~":
						op, rest = model.MatchNotRegexp, rest[2:]
					case len(rest) > 1 && rest[:2] == "!=":
						op, rest = model.MatchNotEqual, rest[2:]
					default:
						op, rest = model.MatchEqual, rest[1:]
					}
					_, err := fmt.Sscanf(trim(rest), "%q", &value)
					require.NoError(t, err, part)
					break
				}
			}
			m, err := model.NewMatcher(op, name, value)
			require.NoError(t, err)
			out = append(out, m)
		}
	}
	return out
}

func splitTop(s string) []string {
	var out []string
	inQuote, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func trim(s string) string {
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	return s
}

// TestCorruption flips every byte and truncates at every length: each must
// be reported as a corruption error.
func TestCorruption(t *testing.T) {
	b, err := Encode(testStreams(t))
	require.NoError(t, err)
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0x40
		_, err := Decode(c)
		var ce *iter.CorruptionError
		require.Truef(t, errors.As(err, &ce), "flip at %d: %v", i, err)
	}
	for n := 0; n < len(b); n++ {
		_, err := Decode(b[:n])
		var ce *iter.CorruptionError
		require.Truef(t, errors.As(err, &ce), "truncate at %d: %v", n, err)
	}
}

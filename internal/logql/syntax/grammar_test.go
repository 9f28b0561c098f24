package syntax

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGrammarMatchesParser keeps grammar.md and the parser in step: every
// production has exactly one parseX method (names compared ignoring case,
// so ipArg is parseIPArg), every parseX method has a
// production, and the keyword sets list exactly the operators the parser
// knows.
func TestGrammarMatchesParser(t *testing.T) {
	doc, err := os.ReadFile("grammar.md")
	require.NoError(t, err)
	prods := map[string]string{}
	prodRe := regexp.MustCompile(`(?m)^([a-z][A-Za-z]*)\s+=\s`)
	for _, block := range regexp.MustCompile("(?s)```ebnf\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		body := block[1]
		locs := prodRe.FindAllStringSubmatchIndex(body, -1)
		for i, l := range locs {
			end := len(body)
			if i+1 < len(locs) {
				end = locs[i+1][0]
			}
			name := body[l[2]:l[3]]
			_, dup := prods[name]
			require.False(t, dup, "production %s defined twice", name)
			prods[name] = body[l[1]:end]
		}
	}

	keywordSets := map[string][]string{
		"rangeOp":  rangeOpNames[:],
		"vectorOp": vectorOpNames[:],
		"binOp":    binOpNames[:],
	}
	for name, want := range keywordSets {
		rhs, ok := prods[name]
		require.True(t, ok, "keyword set %s missing from grammar.md", name)
		var got []string
		for _, m := range regexp.MustCompile(`"([^"]+)"`).FindAllStringSubmatch(rhs, -1) {
			got = append(got, m[1])
		}
		sort.Strings(got)
		w := append([]string(nil), want...)
		sort.Strings(w)
		require.Equal(t, w, got, "keyword set %s", name)
		delete(prods, name)
	}

	funcs := map[string]int{}
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	funcRe := regexp.MustCompile(`(?m)^func \(p \*parser\) parse([A-Z][A-Za-z]*)\(`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range funcRe.FindAllStringSubmatch(string(src), -1) {
			funcs[strings.ToLower(m[1])]++
		}
	}
	lower := map[string]bool{}
	for name := range prods {
		lower[strings.ToLower(name)] = true
		require.Equal(t, 1, funcs[strings.ToLower(name)], "production %s needs exactly one parse%s method", name, strings.ToUpper(name[:1])+name[1:])
	}
	for name := range funcs {
		require.True(t, lower[name], "parse method for %s has no production in grammar.md", name)
	}
}

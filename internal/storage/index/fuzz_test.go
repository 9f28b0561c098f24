package index

import (
	"testing"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// FuzzIndexDecode feeds arbitrary bytes to Decode: it must never panic, and
// whatever it accepts must be queryable.
func FuzzIndexDecode(f *testing.F) {
	valid, err := Encode(testStreams(f))
	if err != nil {
		f.Fatal(err)
	}
	empty, err := Encode(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(empty)
	f.Add(valid[:len(valid)/2])
	f.Add([]byte("LLIX\x01\x00\x00\x00"))
	ms := parseMatchers(f, `app=~"a.*"`, `env!="dev"`, `pod=""`)
	f.Fuzz(func(t *testing.T, b []byte) {
		ix, err := Decode(b)
		if err != nil {
			return
		}
		for _, id := range ix.Select(ms) {
			_ = ix.Stream(int(id)).Labels.String()
		}
		ix.LabelNames(ms)
		for _, n := range ix.LabelNamesAll() {
			ix.LabelValues(n, ms)
		}
		all, _ := model.NewMatcher(model.MatchRegexp, "app", ".*")
		if got := len(ix.Select([]*model.Matcher{all})); got != ix.Len() {
			t.Fatalf("app=~\".*\" selected %d of %d streams", got, ix.Len())
		}
	})
}

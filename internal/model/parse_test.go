package model

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/stretchr/testify/require"
)

func TestParseLabels(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		ls, err := ParseLabels(in)
		require.NoError(t, err, in)
		require.Equal(t, want, ls.String())
	}
	f(`{}`, `{}`)
	f(`{a="b"}`, `{a="b"}`)
	f(` { b = "2" , a="1", } `, `{a="1", b="2"}`)
	f(`{a="q\"x\\y"}`, `{a="q\"x\\y"}`)
	f("{a=`raw\\n`}", `{a="raw\\n"}`)
	f(`{service="ledger",environment="prod",level="info",region="eu-west"}`, `{environment="prod", level="info", region="eu-west", service="ledger"}`)

	bad := func(in, wantErr string) {
		t.Helper()
		_, err := ParseLabels(in)
		require.Error(t, err, in)
		require.Contains(t, err.Error(), wantErr)
	}
	bad(`{1="a"}`, `1:2: parse error: unexpected character inside braces: '1'`)
	bad(`a="b"`, `parse error`)
	bad(`{a="b"`, `parse error`)
	bad(`{a="b",a="c"}`, `duplicate label name "a"`)
	bad(`{a="b}`, `unterminated`)
}

func FuzzParseLabels(f *testing.F) {
	for _, s := range []string{`{}`, `{a="b"}`, `{a="b", c="d"}`, `{a="\u00e9"}`, "{a=`x`}", `{"utf.name"="x"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ls, err := ParseLabels(s)
		if err != nil {
			return
		}
		again, err := ParseLabels(ls.String())
		if err != nil {
			t.Fatalf("reparse %q (from %q): %v", ls.String(), s, err)
		}
		if !labels.Equal(again, ls) {
			t.Fatalf("round trip %q -> %q", ls.String(), again.String())
		}
	})
}

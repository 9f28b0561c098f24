package syntax

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/stretchr/testify/require"
)

// dump renders a tree structurally (types, fields, matchers by value) so
// that two trees compare equal exactly when they have the same shape.
func dump(x any) string {
	var b strings.Builder
	dumpValue(&b, reflect.ValueOf(x))
	return b.String()
}

var matcherType = reflect.TypeOf(&model.Matcher{})

func dumpValue(b *strings.Builder, v reflect.Value) {
	if !v.IsValid() {
		b.WriteString("nil")
		return
	}
	if v.Type() == matcherType {
		if v.IsNil() {
			b.WriteString("nil")
			return
		}
		m := v.Interface().(*model.Matcher)
		fmt.Fprintf(b, "M(%s %s %q)", m.Name, m.Type, m.Value)
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			b.WriteString("nil")
			return
		}
		dumpValue(b, v.Elem())
	case reflect.Struct:
		b.WriteString(v.Type().Name())
		b.WriteByte('{')
		for i := 0; i < v.NumField(); i++ {
			if !v.Type().Field(i).IsExported() {
				continue
			}
			b.WriteString(v.Type().Field(i).Name)
			b.WriteByte(':')
			dumpValue(b, v.Field(i))
			b.WriteByte(' ')
		}
		b.WriteByte('}')
	case reflect.Slice:
		b.WriteByte('[')
		for i := 0; i < v.Len(); i++ {
			dumpValue(b, v.Index(i))
			b.WriteByte(',')
		}
		b.WriteByte(']')
	case reflect.Float64:
		fmt.Fprintf(b, "%v", v.Float())
	default:
		fmt.Fprintf(b, "%v", v.Interface())
	}
}

// requireRoundTrip checks parse(String(e)) == e and that the pretty form
// parses back to the same tree too.
func requireRoundTrip(t testing.TB, e Expr) {
	t.Helper()
	s := e.String()
	e2, err := Options{AllowEmptyCompatible: true}.ParseExpr(s)
	require.NoError(t, err, "reparse of %q", s)
	require.Equal(t, dump(e), dump(e2), "round trip of %q", s)
	require.Equal(t, s, e2.String())

	pretty := Prettify(e)
	e3, err := Options{AllowEmptyCompatible: true}.ParseExpr(pretty)
	require.NoError(t, err, "reparse of pretty form %q", pretty)
	require.Equal(t, dump(e), dump(e3), "pretty round trip of %q", pretty)
}

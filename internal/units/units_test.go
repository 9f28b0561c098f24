package units

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseByteSize(t *testing.T) {
	f := func(in string, want ByteSize) {
		t.Helper()
		got, err := ParseByteSize(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	f("262144", 262144)
	f("256KB", 256<<10)
	f("3MB", 3<<20)
	f("1.5MB", 3<<19)
	f("1GiB", 1<<30)
	f("64kb", 64<<10)
	for _, bad := range []string{"", "x", "-1MB", "MB"} {
		_, err := ParseByteSize(bad)
		require.Error(t, err, bad)
	}
}

func TestParseDuration(t *testing.T) {
	f := func(in string, want time.Duration) {
		t.Helper()
		got, err := ParseDuration(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	f("0", 0)
	f("1h", time.Hour)
	f("1w", 7*24*time.Hour)
	f("721h", 721*time.Hour)
	f("30d1h", 721*time.Hour)
	f("500ms", 500*time.Millisecond)
	f("1h30m", 90*time.Minute)
	_, err := ParseDuration("soon")
	require.Error(t, err)
	require.Equal(t, "30d1h", Duration(721*time.Hour).String())
}

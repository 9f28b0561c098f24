package tenant

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDefaultsAreLokis(t *testing.T) {
	l := Defaults()
	require.Equal(t, 4.0, l.IngestionRateMB)
	require.EqualValues(t, 256<<10, l.MaxLineSize)
	require.Equal(t, 5000, l.MaxEntriesLimitPerQuery)
	require.Equal(t, 721*time.Hour, l.MaxQueryLength.D())
	require.Equal(t, 500, l.MaxQuerySeries)
	require.True(t, l.UnorderedWrites)
}

func TestOverridesLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "runtime.yaml")
	require.NoError(t, os.WriteFile(path, []byte("overrides:\n  team-a:\n    ingestion_rate_mb: 10\n    max_line_size: 1MB\n"), 0o644))
	o := NewOverrides(Defaults())
	require.NoError(t, o.Load(path))
	require.Equal(t, 10.0, o.For("team-a").IngestionRateMB)
	require.EqualValues(t, 1<<20, o.For("team-a").MaxLineSize)
	require.Equal(t, 5000, o.For("team-a").MaxEntriesLimitPerQuery, "unset keys keep defaults")
	require.Equal(t, 4.0, o.For("other").IngestionRateMB)

	require.NoError(t, os.WriteFile(path, []byte("overrides:\n  team-a:\n    no_such_limit: 1\n"), 0o644))
	require.Error(t, o.Load(path))
	require.Equal(t, 10.0, o.For("team-a").IngestionRateMB, "a bad file changes nothing")
}

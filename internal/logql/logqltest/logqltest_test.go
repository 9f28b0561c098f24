package logqltest

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestScripts runs every testdata/*.test script against a real store.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.test")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			RunFile(t, f)
		})
	}
}

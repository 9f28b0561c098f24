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

// TestSplitEquivalence runs every script with each metric range query also
// evaluated split at several intervals, and requires the split answers
// (or errors) to be bit for bit those of a single pass (LQ-X4).
func TestSplitEquivalence(t *testing.T) {
	files, err := filepath.Glob("testdata/*.test")
	require.NoError(t, err)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			RunFileWith(t, f, Config{SplitCheck: true})
		})
	}
}

package objstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFilesystemUpload(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := NewFilesystem(filepath.Join(dir, "bucket"))
	require.NoError(t, err)

	require.NoError(t, b.Upload(ctx, "t1/blk/chunks/000001", strings.NewReader("hello")))
	require.NoError(t, b.Upload(ctx, "t1/blk/chunks/000001", strings.NewReader("replaced")))
	rc, err := b.Get(ctx, "t1/blk/chunks/000001")
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, "replaced", string(got))

	rc, err = b.GetRange(ctx, "t1/blk/chunks/000001", 2, 3)
	require.NoError(t, err)
	got, err = io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, "pla", string(got))

	// No temporary files are left behind.
	entries, err := os.ReadDir(filepath.Join(dir, "bucket", "t1", "blk", "chunks"))
	require.NoError(t, err)
	require.Len(t, entries, 1)

	_, err = b.Get(ctx, "t1/missing")
	require.True(t, b.IsObjNotFoundErr(err))
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

func TestFilesystemUploadFailureLeavesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := NewFilesystem(dir)
	require.NoError(t, err)
	require.NoError(t, b.Upload(ctx, "a/meta.json", bytes.NewReader([]byte("{}"))))
	require.Error(t, b.Upload(ctx, "a/meta.json", io.MultiReader(strings.NewReader("partial"), failingReader{})))
	entries, err := os.ReadDir(filepath.Join(dir, "a"))
	require.NoError(t, err)
	require.Len(t, entries, 1)
	got, err := os.ReadFile(filepath.Join(dir, "a", "meta.json"))
	require.NoError(t, err)
	require.Equal(t, "{}", string(got), "a failed upload keeps the old object")
}

// Package objstore owns how Ledgerlog opens object-store buckets. The bucket
// contract is Thanos' objstore.Bucket (aliased here as Bucket); this package
// adds a filesystem bucket whose uploads are atomic and durable, which the
// block protocol (docs/format/block.md) relies on: once meta.json is visible,
// every file it describes is on disk.
package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"
)

// Bucket is the object-store contract (github.com/thanos-io/objstore). Its
// methods are safe for concurrent use; not-found errors are recognised with
// IsObjNotFoundErr.
type Bucket = objstore.Bucket

// NewInMem returns an in-memory bucket, for tests and tools.
func NewInMem() Bucket { return objstore.NewInMemBucket() }

// Filesystem is a bucket in a local directory. It is Thanos' filesystem
// bucket except for Upload, which writes a temporary file in the target
// directory, fsyncs it, renames it into place and fsyncs the directory (and
// every directory it had to create), so an object is either absent or
// complete and durable. Readers may list leftover ".tmp-" files after a
// crash; they are removed with their block. Safe for concurrent use.
type Filesystem struct {
	*filesystem.Bucket
	root string
}

var _ Bucket = (*Filesystem)(nil)

// tmpPrefix starts the names of files being uploaded.
const tmpPrefix = ".tmp-"

// NewFilesystem returns a bucket rooted at dir, creating dir if needed.
func NewFilesystem(dir string) (*Filesystem, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open filesystem bucket %s: %w", dir, err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("open filesystem bucket %s: %w", dir, err)
	}
	b, err := filesystem.NewBucket(root)
	if err != nil {
		return nil, fmt.Errorf("open filesystem bucket %s: %w", dir, err)
	}
	return &Filesystem{Bucket: b, root: root}, nil
}

// Upload writes r to name atomically and durably (see Filesystem).
func (b *Filesystem) Upload(ctx context.Context, name string, r io.Reader, _ ...objstore.ObjectUploadOption) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	if name == "" {
		return errors.New("upload: object name is empty")
	}
	file := filepath.Join(b.root, filepath.FromSlash(name))
	dir := filepath.Dir(file)
	if err := b.mkdirAll(dir); err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	f, err := os.CreateTemp(dir, tmpPrefix+filepath.Base(file)+"-*")
	if err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			err = errors.Join(err, f.Close())
			_ = os.Remove(tmp)
		}
	}()
	if _, err := io.Copy(f, r); err != nil {
		return fmt.Errorf("upload %s: write: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("upload %s: fsync: %w", name, err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("upload %s: close: %w", name, err)
	}
	if err := os.Rename(tmp, file); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("upload %s: rename: %w", name, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	return nil
}

// mkdirAll creates dir and its missing parents below the root, fsyncing the
// parent of each directory it creates so the new entries are durable.
func (b *Filesystem) mkdirAll(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir && len(parent) >= len(b.root) {
		if err := b.mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	if err := d.Sync(); err != nil {
		return errors.Join(fmt.Errorf("fsync dir %s: %w", dir, err), d.Close())
	}
	return d.Close()
}

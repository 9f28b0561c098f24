//go:build !linux

package wal

import (
	"os"
	"syscall"
)

var errNoSpace error = syscall.ENOSPC

// fdatasync falls back to fsync (F_FULLFSYNC on darwin) where fdatasync is
// not available.
func fdatasync(f *os.File) error { return f.Sync() }

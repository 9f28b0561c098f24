package wal

import (
	"os"

	"golang.org/x/sys/unix"
)

var errNoSpace error = unix.ENOSPC

// fdatasync flushes f's data and the metadata needed to read it back (the
// size), but not timestamps: cheaper than fsync on an append-only file.
func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return f.Sync()
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = unix.Fdatasync(int(fd))
			if serr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}

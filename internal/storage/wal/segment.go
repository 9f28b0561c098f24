package wal

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// listing is what a WAL directory holds.
type listing struct {
	segments    []int    // segment indexes, ascending
	checkpoints []int    // boundaries of complete checkpoints, ascending
	tmp         []string // unfinished checkpoint directories
}

// latestCheckpoint returns the boundary of the newest checkpoint, -1 if none.
func (l listing) latestCheckpoint() int {
	if len(l.checkpoints) == 0 {
		return -1
	}
	return l.checkpoints[len(l.checkpoints)-1]
}

func listDir(dir string) (listing, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return listing{}, fmt.Errorf("list wal dir: %w", err)
	}
	var l listing
	for _, e := range entries {
		name := e.Name()
		switch {
		case e.IsDir() && strings.HasPrefix(name, checkpointPrefix) && strings.HasSuffix(name, tmpSuffix):
			l.tmp = append(l.tmp, name)
		case e.IsDir():
			if b, ok := parseCheckpointName(name); ok {
				l.checkpoints = append(l.checkpoints, b)
			}
		case e.Type().IsRegular():
			if i, ok := parseIndex(name); ok {
				l.segments = append(l.segments, i)
			}
		}
	}
	slices.Sort(l.segments)
	slices.Sort(l.checkpoints)
	return l, nil
}

// createSegment creates segment i in dir with its header, makes the header
// and the directory entry durable, and returns the file open for writing.
// It never overwrites an existing file.
func createSegment(dir string, i int) (*os.File, error) {
	path := segmentPath(dir, i)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create segment %d: %w", i, err)
	}
	if _, err := f.Write(appendSegmentHeader(nil)); err != nil {
		return nil, errors.Join(fmt.Errorf("write segment %d header: %w", i, err), f.Close(), os.Remove(path))
	}
	if err := fdatasync(f); err != nil {
		return nil, errors.Join(fmt.Errorf("sync segment %d: %w", i, err), f.Close())
	}
	if err := syncDir(dir); err != nil {
		return nil, errors.Join(fmt.Errorf("create segment %d: %w", i, err), f.Close())
	}
	return f, nil
}

// syncDir makes the entries of dir (created, renamed, removed files) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir for sync: %w", err)
	}
	if err := d.Sync(); err != nil {
		return errors.Join(fmt.Errorf("sync dir %s: %w", dir, err), d.Close())
	}
	if err := d.Close(); err != nil {
		return fmt.Errorf("close dir %s: %w", dir, err)
	}
	return nil
}

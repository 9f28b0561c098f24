package wal

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// File and directory names inside the WAL directory (docs/format/wal.md).
const (
	lockFileName     = "LOCK"
	checkpointPrefix = "checkpoint."
	tmpSuffix        = ".tmp"
	indexDigits      = 8
)

// segmentName returns the file name of segment i ("00000012").
func segmentName(i int) string { return fmt.Sprintf("%0*d", indexDigits, i) }

// segmentPath returns the path of segment i in dir.
func segmentPath(dir string, i int) string { return filepath.Join(dir, segmentName(i)) }

// checkpointName returns the directory name of the checkpoint that replaces
// the segments below boundary ("checkpoint.00000012").
func checkpointName(boundary int) string { return checkpointPrefix + segmentName(boundary) }

// parseIndex parses a segment name; ok is false for any other name.
func parseIndex(name string) (int, bool) {
	if len(name) < indexDigits {
		return 0, false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < '0' || name[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(name)
	if err != nil {
		return 0, false
	}
	return n, true
}

// parseCheckpointName parses "checkpoint.NNNNNNNN"; ok is false for any other
// name, including the ".tmp" directories of unfinished checkpoints.
func parseCheckpointName(name string) (boundary int, ok bool) {
	rest, found := strings.CutPrefix(name, checkpointPrefix)
	if !found {
		return 0, false
	}
	return parseIndex(rest)
}

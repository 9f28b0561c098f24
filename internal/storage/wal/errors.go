package wal

import (
	"errors"
	"fmt"

	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
)

// Causes carried by a CorruptionError (inside its *iter.CorruptionError);
// test them with errors.Is.
var (
	// ErrChecksum means a frame's CRC32C does not match its bytes.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrTruncated means the file ends inside a segment header or a frame.
	ErrTruncated = errors.New("cut short by end of file")
	// ErrBadLength means a frame header holds an impossible length.
	ErrBadLength = errors.New("impossible frame length")
	// ErrBadHeader means a segment does not start with a version 1 header.
	ErrBadHeader = errors.New("bad segment header")
	// ErrBadPayload means a frame with a correct checksum holds record
	// lengths that do not add up to its payload.
	ErrBadPayload = errors.New("bad record lengths in frame payload")
)

// Errors that are not corruption.
var (
	// ErrUnsupportedFormat means a segment or frame was written by a newer
	// release (a higher version, or a frame flag such as FlagEncrypted that
	// this code cannot decode). The data is intact; it is refused rather than
	// skipped so that a downgrade cannot silently drop it.
	ErrUnsupportedFormat = errors.New("unsupported wal format")
	// ErrClosed is returned by calls on a closed WAL.
	ErrClosed = errors.New("wal closed")
	// ErrBatchTooLarge is returned by Append when the records of one call
	// need more than MaxBatchSize bytes.
	ErrBatchTooLarge = errors.New("batch too large")
	// ErrLocked is returned by Open when another WAL (in this or another
	// process) holds the directory.
	ErrLocked = errors.New("wal directory locked")
)

// CorruptionError reports a damaged segment header or frame. It wraps the
// *iter.CorruptionError shared by the storage layers (Object is the file
// path, Offset the offset of the damaged header or frame), so errors.As
// works with either type, and errors.Is with the causes above.
type CorruptionError struct {
	// Segment is the index in the file name (a WAL or checkpoint segment),
	// -1 if the name is not a segment name.
	Segment int
	// Torn is true when the damage reaches the end of the file, the mark of
	// a write interrupted by a crash rather than of damage at rest.
	Torn bool
	// Err holds the file, the offset and the cause.
	Err *iter.CorruptionError
}

func (e *CorruptionError) Error() string {
	kind := "corrupt"
	if e.Torn {
		kind = "torn"
	}
	return fmt.Sprintf("wal segment %d %s: %v", e.Segment, kind, e.Err)
}

// Unwrap returns the *iter.CorruptionError.
func (e *CorruptionError) Unwrap() error { return e.Err }

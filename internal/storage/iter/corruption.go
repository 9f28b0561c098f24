package iter

import "fmt"

// CorruptionError reports stored data that failed verification (bad CRC,
// truncated file, impossible length). Readers skip or quarantine the object
// and carry on; they never panic on it.
type CorruptionError struct {
	Object string // file or object key
	Offset int64  // byte offset of the bad record, -1 if unknown
	Err    error
}

func (e *CorruptionError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("corruption in %s at offset %d: %v", e.Object, e.Offset, e.Err)
	}
	return fmt.Sprintf("corruption in %s: %v", e.Object, e.Err)
}

func (e *CorruptionError) Unwrap() error { return e.Err }

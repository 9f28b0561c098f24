package block

import (
	"path"

	"github.com/oklog/ulid/v2"

	"github.com/ledgerlog/ledgerlog/internal/storage/index"
)

// Object names inside a block directory (docs/format/block.md).
const (
	MetaFilename           = "meta.json"
	IndexFilename          = "index"
	ChunksDirname          = "chunks"
	DeletionMarkFilename   = "deletion-mark.json"
	QuarantineMarkFilename = "quarantine-mark.json"
)

// Dir returns the object-name prefix of a block: "<tenant>/<ulid>/".
func Dir(tenant string, id ulid.ULID) string { return tenant + "/" + id.String() + "/" }

// objectName returns the object name of file (relative to the block) in
// the block directory.
func objectName(tenant string, id ulid.ULID, file string) string {
	return path.Join(tenant, id.String(), file)
}

// SegmentName is the name, relative to the block directory, of chunk
// segment n ("chunks/000001").
func SegmentName(n int) string { return index.SegmentName(n) }

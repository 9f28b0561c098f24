package block

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// MetaVersion1 is the only meta.json version so far.
const MetaVersion1 = 1

// DefaultWindow is the default time window of a block.
const DefaultWindow = 2 * time.Hour

// Meta is the content of a block's meta.json. Times are Unix nanoseconds;
// [MinTime, MaxTime) is half-open.
type Meta struct {
	ULID       ulid.ULID  `json:"ulid"`
	Version    int        `json:"version"`
	Tenant     string     `json:"tenant"`
	MinTime    int64      `json:"minTime"`
	MaxTime    int64      `json:"maxTime"`
	Window     Window     `json:"window"`
	Stats      Stats      `json:"stats"`
	Compaction Compaction `json:"compaction"`
	Files      []File     `json:"files,omitempty"`
}

// Window is the time window a block was written for, [MinTime, MaxTime).
type Window struct {
	MinTime int64 `json:"minTime"`
	MaxTime int64 `json:"maxTime"`
}

// Range returns the window as a TimeRange.
func (w Window) Range() model.TimeRange { return model.TimeRange{Min: w.MinTime, Max: w.MaxTime} }

// Stats counts a block's content. Bytes are uncompressed line bytes;
// CompressedBytes are chunk data bytes.
type Stats struct {
	Streams         int   `json:"streams"`
	Chunks          int   `json:"chunks"`
	Entries         int64 `json:"entries"`
	Bytes           int64 `json:"bytes"`
	CompressedBytes int64 `json:"compressedBytes"`
}

// Compaction records where a block's data came from. Sources are the
// sorted level 1 blocks whose data the block holds (a level 1 block lists
// itself); Parents are the blocks it was built from directly.
type Compaction struct {
	Level   int         `json:"level"`
	Sources []ulid.ULID `json:"sources"`
	Parents []Parent    `json:"parents,omitempty"`
}

// Parent is a block another block was built from.
type Parent struct {
	ULID    ulid.ULID `json:"ulid"`
	MinTime int64     `json:"minTime"`
	MaxTime int64     `json:"maxTime"`
}

// File is a data file of a block and its size.
type File struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
}

// TimeRange returns [MinTime, MaxTime).
func (m *Meta) TimeRange() model.TimeRange { return model.TimeRange{Min: m.MinTime, Max: m.MaxTime} }

// Dir returns the block's object-name prefix "<tenant>/<ulid>/".
func (m *Meta) Dir() string { return Dir(m.Tenant, m.ULID) }

// sources returns the block's sources, defaulting to the block itself.
func (m *Meta) sources() []ulid.ULID {
	if len(m.Compaction.Sources) == 0 {
		return []ulid.ULID{m.ULID}
	}
	return m.Compaction.Sources
}

// fileSize returns the size recorded for path, or -1.
func (m *Meta) fileSize(path string) int64 {
	for _, f := range m.Files {
		if f.Path == path {
			return f.Size
		}
	}
	return -1
}

// WindowFor returns the window of the given size, aligned to the Unix
// epoch, that contains ts.
func WindowFor(ts int64, size time.Duration) model.TimeRange {
	s := int64(size)
	if s <= 0 {
		s = int64(DefaultWindow)
	}
	start := ts - ts%s
	if ts%s < 0 {
		start -= s
	}
	return model.TimeRange{Min: start, Max: start + s}
}

// parseMeta decodes and checks meta.json of the block tenant/id.
func parseMeta(b []byte, tenant string, id ulid.ULID) (Meta, error) {
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("decode %s: %w", MetaFilename, err)
	}
	switch {
	case m.Version != MetaVersion1:
		return Meta{}, fmt.Errorf("%s: unsupported version %d", MetaFilename, m.Version)
	case m.ULID != id:
		return Meta{}, fmt.Errorf("%s: ulid %s does not match the directory", MetaFilename, m.ULID)
	case m.Tenant != tenant:
		return Meta{}, fmt.Errorf("%s: tenant %q does not match the directory", MetaFilename, m.Tenant)
	case m.MinTime >= m.MaxTime:
		return Meta{}, fmt.Errorf("%s: empty time range [%d, %d)", MetaFilename, m.MinTime, m.MaxTime)
	case m.Compaction.Level < 1:
		return Meta{}, fmt.Errorf("%s: invalid compaction level %d", MetaFilename, m.Compaction.Level)
	case m.Stats.Streams < 0 || m.Stats.Chunks < 0:
		return Meta{}, errors.New(MetaFilename + ": negative counts")
	}
	return m, nil
}

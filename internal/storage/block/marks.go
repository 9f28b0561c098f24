package block

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"
)

// Reasons recorded in deletion marks.
const (
	DeletionCompacted  = "compacted"
	DeletionSuperseded = "superseded"
	DeletionRetention  = "retention"
)

// DeletionMark is the content of deletion-mark.json. DeletionTime is Unix
// seconds, as in Thanos.
type DeletionMark struct {
	ID           ulid.ULID `json:"id"`
	Version      int       `json:"version"`
	DeletionTime int64     `json:"deletion_time"`
	Details      string    `json:"details,omitempty"`
}

// QuarantineMark is the content of quarantine-mark.json. QuarantineTime is
// Unix seconds.
type QuarantineMark struct {
	ID             ulid.ULID `json:"id"`
	Version        int       `json:"version"`
	QuarantineTime int64     `json:"quarantine_time"`
	Reason         string    `json:"reason"`
}

// MarkForDeletion marks the block for deletion now; see WriteDeletionMark.
func MarkForDeletion(ctx context.Context, bkt objstore.Bucket, tenant string, id ulid.ULID) error {
	return WriteDeletionMark(ctx, bkt, tenant, DeletionMark{ID: id, DeletionTime: time.Now().Unix()})
}

// WriteDeletionMark uploads deletion-mark.json for block mark.ID, the first
// step of deleting a block. Readers stop listing the block at once; Delete
// removes it later. An existing mark is kept (the deletion delay is not
// restarted). Safe to call concurrently for different blocks.
func WriteDeletionMark(ctx context.Context, bkt objstore.Bucket, tenant string, mark DeletionMark) error {
	name := objectName(tenant, mark.ID, DeletionMarkFilename)
	ok, err := bkt.Exists(ctx, name)
	if err != nil {
		return fmt.Errorf("mark block %s for deletion: %w", mark.ID, err)
	}
	if ok {
		return nil
	}
	mark.Version = 1
	b, err := json.Marshal(mark)
	if err != nil {
		return fmt.Errorf("mark block %s for deletion: %w", mark.ID, err)
	}
	if err := bkt.Upload(ctx, name, bytes.NewReader(b)); err != nil {
		return fmt.Errorf("mark block %s for deletion: %w", mark.ID, err)
	}
	return nil
}

// ReadDeletionMark returns the deletion mark of a block.
func ReadDeletionMark(ctx context.Context, bkt objstore.BucketReader, tenant string, id ulid.ULID) (DeletionMark, error) {
	var m DeletionMark
	b, err := getAll(ctx, bkt, objectName(tenant, id, DeletionMarkFilename))
	if err != nil {
		return m, fmt.Errorf("read deletion mark of block %s: %w", id, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("read deletion mark of block %s: %w", id, err)
	}
	return m, nil
}

// Quarantine marks a block that failed verification so that readers and
// the compactor skip it. Its files are kept for inspection. reason should
// be the verification error. Safe to call more than once.
func Quarantine(ctx context.Context, bkt objstore.Bucket, tenant string, id ulid.ULID, reason string) error {
	b, err := json.Marshal(QuarantineMark{ID: id, Version: 1, QuarantineTime: time.Now().Unix(), Reason: reason})
	if err != nil {
		return fmt.Errorf("quarantine block %s: %w", id, err)
	}
	if err := bkt.Upload(ctx, objectName(tenant, id, QuarantineMarkFilename), bytes.NewReader(b)); err != nil {
		return fmt.Errorf("quarantine block %s: %w", id, err)
	}
	return nil
}

// Delete removes a block: meta.json first, so that a crash leaves a partial
// block that readers ignore, then every other object, then the deletion
// mark. Callers should mark the block and wait a delay first (readers that
// opened it may still read its chunks). Deleting a missing block is not an
// error.
func Delete(ctx context.Context, bkt objstore.Bucket, tenant string, id ulid.ULID) error {
	dir := Dir(tenant, id)
	if err := deleteIfExists(ctx, bkt, dir+MetaFilename); err != nil {
		return fmt.Errorf("delete block %s: %w", id, err)
	}
	var names []string
	err := bkt.Iter(ctx, dir, func(name string) error {
		if !strings.HasSuffix(name, "/") && name != dir+DeletionMarkFilename {
			names = append(names, name)
		}
		return nil
	}, objstore.WithRecursiveIter())
	if err != nil {
		return fmt.Errorf("delete block %s: list: %w", id, err)
	}
	for _, name := range names {
		if err := deleteIfExists(ctx, bkt, name); err != nil {
			return fmt.Errorf("delete block %s: %w", id, err)
		}
	}
	if err := deleteIfExists(ctx, bkt, dir+DeletionMarkFilename); err != nil {
		return fmt.Errorf("delete block %s: %w", id, err)
	}
	return nil
}

func deleteIfExists(ctx context.Context, bkt objstore.Bucket, name string) error {
	if err := bkt.Delete(ctx, name); err != nil && !bkt.IsObjNotFoundErr(err) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// getAll reads a whole object.
func getAll(ctx context.Context, bkt objstore.BucketReader, name string) ([]byte, error) {
	rc, err := bkt.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(rc)
	return b, errors.Join(err, rc.Close())
}

package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/encoding/protowire"
)

// Disk buffer layout (one directory per client):
//
//	seg-<16 digit index>   records appended in order
//	head                   "<segment index> <offset>" of the next unsent record
//
// A record is
//
//	uint32 LE payload length | uint32 LE CRC-32C of payload | payload
//
// and the payload is a sequence of protowire fields: tenant, entry count,
// line bytes, newest timestamp (ns), snappy body, and per carried file
// position: key, offset, dev, inode, fingerprint, fingerprint length.
const (
	segPrefix      = "seg-"
	headFile       = "head"
	maxSegmentSize = 8 << 20
	recordHeader   = 8
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// CorruptionError reports a damaged disk buffer record.
type CorruptionError struct {
	Segment string
	Offset  int64
	Err     error
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("disk buffer %s at %d: %v", e.Segment, e.Offset, e.Err)
}

func (e *CorruptionError) Unwrap() error { return e.Err }

func diskQueueDir(cfg ClientConfig) string {
	h := xxhash.Sum64String(cfg.URL + "\x00" + cfg.TenantID)
	return filepath.Join(cfg.DiskBuffer.Dir, "client-"+strconv.FormatUint(h, 16))
}

type recPos struct {
	seg int64
	off int64
}

// diskQueue is a batchQueue spooled to disk and bounded by maxSize bytes.
// Push blocks while the spool is full. Batches pushed by this process keep
// their in-memory acknowledgements; batches replayed from an earlier run
// commit the file positions they carry.
type diskQueue struct {
	dir       string
	maxSize   int64
	logger    *slog.Logger
	positions *Positions // set before Run; commits replayed positions

	mu      sync.Mutex
	segs    []int64 // guarded by mu; existing segment indexes, ascending
	w       *os.File
	wseg    int64
	woff    int64
	rseg    int64
	roff    int64
	size    int64 // bytes of unsent records
	count   int
	live    map[recPos][]*ackRef
	high    map[string]Position
	head    *wireBatch
	headLen int64
	avail   chan struct{}
	space   chan struct{}
}

func openDiskQueue(dir string, maxSize int64, logger *slog.Logger) (*diskQueue, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create disk buffer %s: %w", dir, err)
	}
	if maxSize <= 0 {
		maxSize = 1 << 30
	}
	q := &diskQueue{dir: dir, maxSize: maxSize, logger: logger, live: map[recPos][]*ackRef{},
		high: map[string]Position{}, avail: make(chan struct{}, 1), space: make(chan struct{}, 1)}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list disk buffer %s: %w", dir, err)
	}
	for _, e := range ents {
		if n, ok := strings.CutPrefix(e.Name(), segPrefix); ok {
			if i, err := strconv.ParseInt(n, 10, 64); err == nil {
				q.segs = append(q.segs, i)
			}
		}
	}
	sort.Slice(q.segs, func(i, j int) bool { return q.segs[i] < q.segs[j] })
	if data, err := os.ReadFile(filepath.Join(dir, headFile)); err == nil {
		f := strings.Fields(string(data))
		if len(f) == 2 {
			q.rseg, _ = strconv.ParseInt(f[0], 10, 64)
			q.roff, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	// drop consumed segments, then scan the rest
	for len(q.segs) > 0 && q.segs[0] < q.rseg {
		_ = os.Remove(q.segPath(q.segs[0]))
		q.segs = q.segs[1:]
	}
	if len(q.segs) == 0 {
		q.segs = []int64{max(q.rseg, 1)}
		q.rseg, q.roff = q.segs[0], 0
	} else if q.rseg < q.segs[0] {
		q.rseg, q.roff = q.segs[0], 0
	}
	for i, s := range q.segs {
		start := int64(0)
		if s == q.rseg {
			start = q.roff
		}
		end, err := q.scan(s, start)
		if err != nil {
			return nil, err
		}
		if i == len(q.segs)-1 {
			q.wseg, q.woff = s, end
		}
	}
	w, err := os.OpenFile(q.segPath(q.wseg), os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open disk buffer segment: %w", err)
	}
	if err := w.Truncate(q.woff); err != nil { // cut a torn tail
		_ = w.Close()
		return nil, fmt.Errorf("truncate disk buffer segment: %w", err)
	}
	if _, err := w.Seek(q.woff, io.SeekStart); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("seek disk buffer segment: %w", err)
	}
	q.w = w
	if q.count > 0 {
		logger.Info("replaying disk buffer", "dir", dir, "batches", q.count, "bytes", q.size)
		q.signal(q.avail)
	}
	return q, nil
}

func (q *diskQueue) segPath(i int64) string {
	return filepath.Join(q.dir, fmt.Sprintf("%s%016d", segPrefix, i))
}

// scan reads the records of segment s from start and returns the end of
// the last intact record. A damaged record ends the segment (its tail is
// a torn write).
func (q *diskQueue) scan(s, start int64) (int64, error) {
	f, err := os.Open(q.segPath(s))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("open disk buffer segment %d: %w", s, err)
	}
	defer f.Close()
	off := start
	for {
		wb, n, err := readRecord(f, off)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				q.logger.Warn("disk buffer: dropping damaged tail", "segment", s, "offset", off, "err", err)
			}
			return off, nil
		}
		q.size += n
		q.count++
		for _, t := range wb.tags {
			q.high[t.key] = t.pos
		}
		off += n
	}
}

// readRecord reads the record at off; io.EOF means no complete record.
func readRecord(f *os.File, off int64) (*wireBatch, int64, error) {
	var hdr [recordHeader]byte
	if _, err := f.ReadAt(hdr[:], off); err != nil {
		return nil, 0, io.EOF
	}
	n := int64(binary.LittleEndian.Uint32(hdr[0:4]))
	if n > 1<<30 {
		return nil, 0, &CorruptionError{Segment: f.Name(), Offset: off, Err: errors.New("record too large")}
	}
	payload := make([]byte, n)
	if _, err := f.ReadAt(payload, off+recordHeader); err != nil {
		return nil, 0, io.EOF
	}
	if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(hdr[4:8]) {
		return nil, 0, &CorruptionError{Segment: f.Name(), Offset: off, Err: errors.New("checksum mismatch")}
	}
	wb, err := unmarshalBatch(payload)
	if err != nil {
		return nil, 0, &CorruptionError{Segment: f.Name(), Offset: off, Err: err}
	}
	return wb, recordHeader + n, nil
}

func marshalBatch(dst []byte, b *wireBatch) []byte {
	dst = protowire.AppendString(dst, b.tenant)
	dst = protowire.AppendVarint(dst, uint64(b.entries))
	dst = protowire.AppendVarint(dst, uint64(b.bytes))
	dst = protowire.AppendVarint(dst, uint64(unixNanos(b.newest)))
	dst = protowire.AppendBytes(dst, b.body)
	dst = protowire.AppendVarint(dst, uint64(len(b.tags)))
	for _, t := range b.tags {
		dst = protowire.AppendString(dst, t.key)
		dst = protowire.AppendVarint(dst, uint64(t.pos.Offset))
		dst = protowire.AppendVarint(dst, t.pos.ID.Dev)
		dst = protowire.AppendVarint(dst, t.pos.ID.Ino)
		dst = protowire.AppendString(dst, t.pos.ID.FP)
		dst = protowire.AppendVarint(dst, uint64(t.pos.ID.FPLen))
	}
	return dst
}

var errShortRecord = errors.New("short record")

func unmarshalBatch(p []byte) (*wireBatch, error) {
	b := &wireBatch{}
	str := func() string {
		v, n := protowire.ConsumeBytes(p)
		if n < 0 {
			p = nil
			return ""
		}
		p = p[n:]
		return string(v)
	}
	num := func() uint64 {
		v, n := protowire.ConsumeVarint(p)
		if n < 0 {
			p = nil
			return 0
		}
		p = p[n:]
		return v
	}
	b.tenant = str()
	b.entries = int(num())
	b.bytes = int(num())
	b.newest = timeFromNanos(int64(num()))
	body, n := protowire.ConsumeBytes(p)
	if n < 0 {
		return nil, errShortRecord
	}
	b.body = body
	p = p[n:]
	nt := num()
	if nt > uint64(len(p)) {
		return nil, errShortRecord
	}
	for range nt {
		t := persisted{key: str()}
		t.pos.Offset = int64(num())
		t.pos.ID.Dev = num()
		t.pos.ID.Ino = num()
		t.pos.ID.FP = str()
		t.pos.ID.FPLen = int(num())
		if p == nil {
			return nil, errShortRecord
		}
		b.tags = append(b.tags, t)
	}
	return b, nil
}

func (q *diskQueue) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Push appends b durably (fsync). It blocks while the buffer holds
// maxSize bytes or more, unless it is empty.
func (q *diskQueue) Push(ctx context.Context, b *wireBatch) error {
	payload := marshalBatch(nil, b)
	rec := make([]byte, recordHeader, recordHeader+len(payload))
	binary.LittleEndian.PutUint32(rec[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(rec[4:8], crc32.Checksum(payload, crcTable))
	rec = append(rec, payload...)
	for {
		q.mu.Lock()
		if q.size == 0 || q.size+int64(len(rec)) <= q.maxSize {
			break
		}
		q.mu.Unlock()
		select {
		case <-q.space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer q.mu.Unlock()
	if q.woff > 0 && q.woff+int64(len(rec)) > maxSegmentSize {
		if err := q.rotate(); err != nil {
			return err
		}
	}
	if _, err := q.w.Write(rec); err != nil {
		return fmt.Errorf("write disk buffer: %w", err)
	}
	if err := q.w.Sync(); err != nil {
		return fmt.Errorf("sync disk buffer: %w", err)
	}
	if len(b.acks) > 0 {
		q.live[recPos{q.wseg, q.woff}] = b.acks
	}
	q.woff += int64(len(rec))
	q.size += int64(len(rec))
	q.count++
	q.signal(q.avail)
	return nil
}

func (q *diskQueue) rotate() error {
	if err := q.w.Close(); err != nil {
		return fmt.Errorf("close disk buffer segment: %w", err)
	}
	q.wseg++
	q.woff = 0
	w, err := os.OpenFile(q.segPath(q.wseg), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("create disk buffer segment: %w", err)
	}
	q.w = w
	q.segs = append(q.segs, q.wseg)
	return nil
}

// Peek returns the oldest unsent batch, waiting for one.
func (q *diskQueue) Peek(ctx context.Context) (*wireBatch, error) {
	for {
		q.mu.Lock()
		if q.head != nil {
			b := q.head
			q.mu.Unlock()
			return b, nil
		}
		if q.rseg == q.wseg && q.roff >= q.woff {
			q.mu.Unlock()
			select {
			case <-q.avail:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if q.rseg < q.wseg {
			fi, err := os.Stat(q.segPath(q.rseg))
			if err != nil || q.roff >= fi.Size() {
				q.nextSegmentLocked()
				q.mu.Unlock()
				continue
			}
		}
		f, err := os.Open(q.segPath(q.rseg))
		if err != nil {
			q.mu.Unlock()
			return nil, fmt.Errorf("open disk buffer segment: %w", err)
		}
		b, n, err := readRecord(f, q.roff)
		_ = f.Close()
		if err != nil {
			// damaged or torn record in a closed segment: skip the segment
			q.logger.Error("disk buffer: skipping damaged segment", "segment", q.rseg, "offset", q.roff, "err", err)
			if q.rseg < q.wseg {
				q.nextSegmentLocked()
				q.mu.Unlock()
				continue
			}
			q.mu.Unlock()
			return nil, err
		}
		if acks, ok := q.live[recPos{q.rseg, q.roff}]; ok {
			b.acks = acks
			delete(q.live, recPos{q.rseg, q.roff})
		}
		q.head, q.headLen = b, n
		q.mu.Unlock()
		return b, nil
	}
}

func (q *diskQueue) nextSegmentLocked() {
	_ = os.Remove(q.segPath(q.rseg))
	if len(q.segs) > 0 && q.segs[0] == q.rseg {
		q.segs = q.segs[1:]
	}
	q.rseg++
	q.roff = 0
}

// Pop removes the batch Peek returned and records the new head durably.
func (q *diskQueue) Pop() error {
	q.mu.Lock()
	if q.head == nil {
		q.mu.Unlock()
		return nil
	}
	q.roff += q.headLen
	q.size -= q.headLen
	q.count--
	q.head = nil
	rseg, roff := q.rseg, q.roff
	q.mu.Unlock()
	q.signal(q.space)
	return writeFileAtomic(filepath.Join(q.dir, headFile), []byte(fmt.Sprintf("%d %d\n", rseg, roff)))
}

// Len reports the number of unsent batches.
func (q *diskQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.count
}

// Size reports the bytes of unsent batches.
func (q *diskQueue) Size() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.size
}

// highWater returns the newest file position per key found in the buffer
// when it was opened.
func (q *diskQueue) highWater() map[string]Position {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make(map[string]Position, len(q.high))
	for k, v := range q.high {
		out[k] = v
	}
	return out
}

// Close closes the write segment.
func (q *diskQueue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.w == nil {
		return nil
	}
	err := q.w.Close()
	q.w = nil
	return err
}

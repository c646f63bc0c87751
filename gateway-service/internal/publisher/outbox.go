package publisher

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Record is one message as the outbox stores it: the base subject (the
// namespace is applied when it is published), the message id and type,
// the W3C traceparent, and the body: one encoded envelope, or, when N > 1,
// a batch of N (see frame).
type Record struct {
	// Seq is the order of emission within one process run; a segment is
	// published sorted by it, because an outcome that overflowed the
	// queue reaches the file before older ones still queued.
	Seq         uint64          `json:"q"`
	Subject     string          `json:"s"`
	ID          string          `json:"id"`
	Type        string          `json:"t"`
	TraceParent string          `json:"tp,omitempty"`
	Body        json.RawMessage `json:"b"`
	N           int             `json:"n,omitempty"`
}

// Outbox is the file-backed queue used while NATS is unreachable (or the
// in-memory queue is full). Records are JSON lines appended to
// "current.jsonl"; a replay first seals that file into the next numbered
// segment ("seg-000000000001.jsonl"), then publishes segments oldest
// first, so the order of appends is the order of publication. Durability:
// with SyncAlways every appended record is fsynced; with SyncBatch one
// fsync covers each Append call (a batch of records), so a crash loses at
// most the batch being written. An Append that fails (disk full, I/O
// error) stores none of its records: the file is cut back to where it
// ended before, so no torn line is left in the middle of a segment, and
// the next Append tries again.
type Outbox struct {
	dir    string
	always bool

	mu  sync.Mutex
	cur *os.File
	w   *bufio.Writer
	// size is the length of cur after the last successful Append.
	size  int64
	seq   uint64
	bytes atomic.Int64
}

// OpenOutbox opens (creating) the outbox in dir and counts what it holds.
func OpenOutbox(dir string, syncAlways bool) (*Outbox, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	o := &Outbox{dir: dir, always: syncAlways}
	segs, err := o.segments()
	if err != nil {
		return nil, err
	}
	var total int64
	for _, s := range segs {
		var n uint64
		if _, err := fmt.Sscanf(filepath.Base(s), "seg-%012d.jsonl", &n); err == nil && n > o.seq {
			o.seq = n
		}
		if fi, err := os.Stat(s); err == nil {
			total += fi.Size()
		}
	}
	if fi, err := os.Stat(o.currentPath()); err == nil {
		total += fi.Size()
	}
	o.bytes.Store(total)
	// Records left by an earlier run get their own segment: sequence
	// numbers restart with each run.
	if err := o.seal(); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *Outbox) currentPath() string { return filepath.Join(o.dir, "current.jsonl") }

// Bytes is the size of everything waiting in the outbox.
func (o *Outbox) Bytes() int64 { return o.bytes.Load() }

// Pending reports whether anything waits to be replayed.
func (o *Outbox) Pending() bool { return o.bytes.Load() > 0 }

// Append stores records at the end of the outbox: all of them, or, when
// it returns an error, none.
func (o *Outbox) Append(recs ...Record) error {
	if len(recs) == 0 {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cur == nil {
		f, err := os.OpenFile(o.currentPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return fmt.Errorf("outbox: %w", err)
		}
		o.cur, o.w, o.size = f, bufio.NewWriterSize(f, 64<<10), fi.Size()
	}
	n, err := o.appendLocked(recs)
	if err != nil {
		o.rollbackLocked()
		return err
	}
	o.size += n
	o.bytes.Add(n)
	return nil
}

func (o *Outbox) appendLocked(recs []Record) (int64, error) {
	var n int64
	for _, r := range recs {
		line, err := json.Marshal(r)
		if err != nil {
			return 0, fmt.Errorf("outbox: %w", err)
		}
		line = append(line, '\n')
		if _, err := o.w.Write(line); err != nil {
			return 0, fmt.Errorf("outbox: %w", err)
		}
		n += int64(len(line))
		if o.always {
			if err := o.syncLocked(); err != nil {
				return 0, err
			}
		}
	}
	return n, o.syncLocked()
}

// rollbackLocked undoes a failed Append. A bufio.Writer keeps its first
// write error for good, so it is reset; the part of the records that
// reached the file is cut off. If the cut fails too, the file is closed
// and the next Append opens it again (a torn line may then remain; a
// replay stops at it).
func (o *Outbox) rollbackLocked() {
	o.w.Reset(o.cur)
	if err := o.cur.Truncate(o.size); err != nil {
		_ = o.cur.Close()
		o.cur, o.w = nil, nil
	}
}

func (o *Outbox) syncLocked() error {
	if err := o.w.Flush(); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if err := o.cur.Sync(); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

// seal turns current.jsonl into the next segment.
func (o *Outbox) seal() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cur != nil {
		if err := o.syncLocked(); err != nil {
			return err
		}
		_ = o.cur.Close()
		o.cur, o.w = nil, nil
	}
	if _, err := os.Stat(o.currentPath()); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	o.seq++
	return os.Rename(o.currentPath(), filepath.Join(o.dir, fmt.Sprintf("seg-%012d.jsonl", o.seq)))
}

func (o *Outbox) segments() ([]string, error) {
	m, err := filepath.Glob(filepath.Join(o.dir, "seg-*.jsonl"))
	if err != nil {
		return nil, err
	}
	sort.Strings(m)
	return m, nil
}

// Replay seals the current file and hands every stored record, oldest
// first, to publish in batches. A segment is deleted once all of it was
// published; when publish fails, the unpublished rest of the segment is
// kept (rewritten) and Replay stops.
func (o *Outbox) Replay(publish func([]Record) (int, error)) error {
	if err := o.seal(); err != nil {
		return err
	}
	segs, err := o.segments()
	if err != nil {
		return err
	}
	for _, s := range segs {
		recs, size, err := readSegment(s)
		if err != nil {
			return err
		}
		sort.SliceStable(recs, func(i, j int) bool { return recs[i].Seq < recs[j].Seq })
		done := 0
		for done < len(recs) {
			end := min(done+256, len(recs))
			n, perr := publish(recs[done:end])
			done += n
			if perr != nil {
				return o.rewrite(s, recs[done:], size)
			}
		}
		if err := os.Remove(s); err != nil {
			return err
		}
		o.bytes.Add(-size)
	}
	return nil
}

func (o *Outbox) rewrite(path string, rest []Record, oldSize int64) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	var n int64
	for _, r := range rest {
		line, _ := json.Marshal(r)
		line = append(line, '\n')
		n += int64(len(line))
		_, _ = w.Write(line)
	}
	if err := errors.Join(w.Flush(), f.Sync(), f.Close()); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	o.bytes.Add(n - oldSize)
	return nil
}

func readSegment(path string) ([]Record, int64, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	var out []Record
	for _, line := range strings.Split(string(raw), "\n") {
		if line == "" {
			continue
		}
		var r Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			// A torn last line of a crash: everything before it is kept.
			break
		}
		out = append(out, r)
	}
	return out, int64(len(raw)), nil
}

// Close flushes and closes the current file.
func (o *Outbox) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cur == nil {
		return nil
	}
	err := errors.Join(o.syncLocked(), o.cur.Close())
	o.cur, o.w = nil, nil
	return err
}

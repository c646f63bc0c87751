package telemetry

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// BufferedWriter batches log lines into fewer writes: a service logging a
// line per request (the gateway) otherwise pays a write system call, and
// often a wake-up of whatever reads its output, for every request. What is
// written reaches the underlying writer when the buffer fills, every
// interval, and on Close; a hard crash loses at most one interval of lines.
type BufferedWriter struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

// NewBufferedWriter returns a BufferedWriter of size bytes over w, flushed
// every interval by a goroutine of its own.
func NewBufferedWriter(w io.Writer, size int, interval time.Duration) *BufferedWriter {
	b := &BufferedWriter{w: bufio.NewWriterSize(w, size), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = b.Flush()
			case <-b.stop:
				return
			}
		}
	}()
	return b
}

// Write implements io.Writer.
func (b *BufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

// Flush writes out what is buffered.
func (b *BufferedWriter) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Flush()
}

// Close stops the flushing goroutine and flushes; later writes are still
// buffered but only a Flush sends them.
func (b *BufferedWriter) Close() error {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	<-b.done
	return b.Flush()
}

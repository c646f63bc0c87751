package testenv

import (
	"bufio"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a TCP forwarder to a real server that a test can cut (refusing
// new connections and breaking open ones) and restore on the same address,
// slow down (SetLatency), or make lose chosen bytes (Filters), so code
// under test sees the server vanish, stall, go deaf and come back without
// the shared server being touched.
type Proxy struct {
	// Addr is where clients connect (host:port).
	Addr string

	t       testing.TB
	target  string
	filters Filters
	latency atomic.Int64 // nanoseconds
	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]struct{}
}

// Filter reads the next piece of one direction of a connection from src
// and returns the bytes to pass on: the piece, something else, or nothing
// to lose it. An error ends that direction after the returned bytes are
// passed on. A filter that understands the protocol reads whole messages
// (src buffers 64 KiB), so it can drop one without breaking the stream.
type Filter func(src *bufio.Reader) ([]byte, error)

// Filters are a Proxy's filters per direction; nil passes the bytes as
// they are read.
type Filters struct {
	ToServer Filter // what the client sends
	ToClient Filter // what the server sends back
}

// NewProxy starts a proxy to target; it is cut when the test ends.
func NewProxy(t testing.TB, target string) *Proxy { return NewFilterProxy(t, target, Filters{}) }

// NewFilterProxy is NewProxy with filters on what it forwards.
func NewFilterProxy(t testing.TB, target string, f Filters) *Proxy {
	t.Helper()
	p := &Proxy{t: t, target: target, filters: f, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.Addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.Cut)
	return p
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			go func() { p.forward(up, c, p.filters.ToServer); up.Close() }()
			go func() { p.forward(c, up, p.filters.ToClient); c.Close() }()
		}
	}()
}

// SetLatency holds every chunk of bytes, in both directions, for d before
// passing it on (0: none), like a slow network: order is kept and nothing
// is lost, so a request can reach the server and be carried out while its
// client gives up waiting for the answer. It applies at once, also to open
// connections.
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// chunk is bytes read from one side, with the time they were read.
type chunk struct {
	b  []byte
	at time.Time
}

// forward copies src to dst, through filter when not nil, until either
// fails. A reader goroutine stamps each chunk when it arrives, so a chunk
// waits for the latency counted from its arrival, not from when the one
// before it left.
func (p *Proxy) forward(dst, src net.Conn, filter Filter) {
	read := func() ([]byte, error) {
		buf := make([]byte, 32<<10)
		n, err := src.Read(buf)
		return buf[:n], err
	}
	if filter != nil {
		br := bufio.NewReaderSize(src, 64<<10)
		read = func() ([]byte, error) { return filter(br) }
	}
	chunks := make(chan chunk, 64)
	go func() {
		defer close(chunks)
		for {
			b, err := read()
			if len(b) > 0 {
				chunks <- chunk{b: b, at: time.Now()}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range chunks {
		if d := time.Until(c.at.Add(time.Duration(p.latency.Load()))); d > 0 {
			time.Sleep(d)
		}
		if _, err := dst.Write(c.b); err != nil {
			src.Close() // ends the reader
			for range chunks {
			}
			return
		}
	}
}

// Cut closes the listener and every open connection.
func (p *Proxy) Cut() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	p.mu.Unlock()
	p.CutConns()
}

// CutConns breaks every open connection; new ones are still accepted.
func (p *Proxy) CutConns() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
}

// Restore listens again on the same address.
func (p *Proxy) Restore() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.Addr)
	if err != nil {
		p.t.Fatalf("testenv: proxy re-listen on %s: %v", p.Addr, err)
	}
	p.serve(ln)
}

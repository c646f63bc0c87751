package testenv

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a TCP forwarder to a real server that a test can cut (refusing
// new connections and breaking open ones) and restore on the same address,
// or slow down (SetLatency), so code under test sees the server vanish,
// stall and come back without the shared server being touched.
type Proxy struct {
	// Addr is where clients connect (host:port).
	Addr string

	t       testing.TB
	target  string
	latency atomic.Int64 // nanoseconds
	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]struct{}
}

// NewProxy starts a proxy to target; it is cut when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p := &Proxy{t: t, target: target, conns: map[net.Conn]struct{}{}}
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
			go func() { p.forward(up, c); up.Close() }()
			go func() { p.forward(c, up); c.Close() }()
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

// forward copies src to dst until either fails. A reader goroutine stamps
// each chunk when it arrives, so a chunk waits for the latency counted from
// its arrival, not from when the one before it left.
func (p *Proxy) forward(dst, src net.Conn) {
	chunks := make(chan chunk, 64)
	go func() {
		defer close(chunks)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				chunks <- chunk{b: buf[:n], at: time.Now()}
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
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
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

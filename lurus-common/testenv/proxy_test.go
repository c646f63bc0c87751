package testenv

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// serveTCP serves connections on a loopback port with handle, each in its
// own goroutine and closed after it, until the test ends.
func serveTCP(t *testing.T, handle func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestProxyCutAndRestore(t *testing.T) {
	p := NewProxy(t, serveTCP(t, func(c net.Conn) {
		line, _ := bufio.NewReader(c).ReadString('\n')
		_, _ = c.Write([]byte(line))
	}))
	roundTrip := func() error {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write([]byte("hi\n")); err != nil {
			return err
		}
		_, err = bufio.NewReader(c).ReadString('\n')
		return err
	}
	if err := roundTrip(); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.Cut()
	if err := roundTrip(); err == nil {
		t.Fatal("reached the server through a cut proxy")
	}
	p.Restore()
	if err := roundTrip(); err != nil {
		t.Fatalf("after restore: %v", err)
	}
}

// TestProxyLatency: with latency set, a request still reaches the server
// while the client gives up waiting for the answer (an insert that commits
// although its client timed out); with latency 0 again, answers come.
func TestProxyLatency(t *testing.T) {
	got := make(chan string, 4)
	p := NewProxy(t, serveTCP(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			got <- line
			_, _ = c.Write([]byte(line))
		}
	}))
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)

	p.SetLatency(2 * time.Second)
	if _, err := c.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if line, err := r.ReadString('\n'); err == nil {
		t.Fatalf("answer %q came through a proxy holding bytes for 2s within 50ms", line)
	}
	select {
	case line := <-got:
		if line != "one\n" {
			t.Fatalf("server got %q", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the delayed request never reached the server")
	}

	p.SetLatency(0)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("two\n")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"one\n", "two\n"} { // in order, nothing lost
		line, err := r.ReadString('\n')
		if err != nil || line != want {
			t.Fatalf("read %q, %v; want %q", line, err, want)
		}
	}
}

// TestProxyFilters: a ToServer filter that reads whole lines loses the
// ones it drops and passes the rest in order; a ToClient filter changes
// what comes back; CutConns breaks the connection but a new one works.
func TestProxyFilters(t *testing.T) {
	echo := serveTCP(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
	p := NewFilterProxy(t, echo, Filters{
		ToServer: func(src *bufio.Reader) ([]byte, error) {
			line, err := src.ReadBytes('\n')
			if strings.HasPrefix(string(line), "drop") {
				return nil, err
			}
			return line, err
		},
		ToClient: func(src *bufio.Reader) ([]byte, error) {
			line, err := src.ReadBytes('\n')
			return bytes.ToUpper(line), err
		},
	})
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		return c, bufio.NewReader(c)
	}
	c, r := dial()
	if _, err := c.Write([]byte("one\ndrop me\ntwo\n")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ONE\n", "TWO\n"} {
		if line, err := r.ReadString('\n'); err != nil || line != want {
			t.Fatalf("read %q, %v; want %q", line, err, want)
		}
	}
	p.CutConns()
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("connection still open after CutConns")
	}
	c, r = dial()
	if _, err := c.Write([]byte("three\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err != nil || line != "THREE\n" {
		t.Fatalf("after CutConns: read %q, %v", line, err)
	}
}

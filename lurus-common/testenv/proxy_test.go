package testenv

import (
	"bufio"
	"net"
	"testing"
	"time"
)

func TestProxyCutAndRestore(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				_, _ = c.Write([]byte(line))
			}()
		}
	}()
	p := NewProxy(t, echo.Addr().String())
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
	srv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	got := make(chan string, 4)
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					got <- line
					_, _ = c.Write([]byte(line))
				}
			}()
		}
	}()
	p := NewProxy(t, srv.Addr().String())
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

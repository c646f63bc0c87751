package data

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/cloudwego/hertz/pkg/network"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/netguard"
)

// dialer is the Hertz client dialer of one provider: it refuses
// restricted addresses at dial time (netguard, unless the provider allows
// private networks), bounds the connect, and returns upstreamConn.
type dialer struct {
	allowPrivate bool
	idle         time.Duration
}

// dialError marks an error of reaching the provider.
type dialError struct{ err error }

func (e dialError) Error() string { return "dial: " + e.err.Error() }
func (e dialError) Unwrap() []error {
	return []error{e.err, biz.ErrUpstreamConnect}
}

func (d *dialer) netDialer(timeout time.Duration) *net.Dialer {
	nd := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !d.allowPrivate {
		nd.Control = netguard.Control
	}
	return nd
}

// DialConnection implements network.Dialer.
func (d *dialer) DialConnection(n, address string, timeout time.Duration, tlsConfig *tls.Config) (network.Conn, error) {
	c, err := d.netDialer(timeout).Dial(n, address)
	if err != nil {
		return nil, dialError{err}
	}
	if tlsConfig != nil {
		tc := tls.Client(c, tlsConfig)
		return &tlsUpstreamConn{upstreamConn: *newUpstreamConn(tc, d.idle), tc: tc}, nil
	}
	return newUpstreamConn(c, d.idle), nil
}

// DialTimeout implements network.Dialer.
func (d *dialer) DialTimeout(n, address string, timeout time.Duration, _ *tls.Config) (net.Conn, error) {
	c, err := d.netDialer(timeout).Dial(n, address)
	if err != nil {
		return nil, dialError{err}
	}
	return c, nil
}

// AddTLS implements network.Dialer.
func (d *dialer) AddTLS(conn network.Conn, tlsConfig *tls.Config) (network.Conn, error) {
	tc := tls.Client(conn, tlsConfig)
	if err := tc.Handshake(); err != nil {
		return nil, dialError{err}
	}
	return &tlsUpstreamConn{upstreamConn: *newUpstreamConn(tc, d.idle), tc: tc}, nil
}

// upstreamConn is a buffered network.Conn whose read timeout has the
// meaning the relay needs: after SetReadTimeout(t) (Hertz calls it before
// reading each response) the first read waits up to t — the first-byte
// timeout — and every later read up to the idle timeout, however long
// the stream lives. Go's net.Conn only knows absolute deadlines, and
// Hertz's standard conn sets one per response, which would cut long
// streams.
type upstreamConn struct {
	net.Conn
	idle     time.Duration
	first    time.Duration
	useFirst bool
	wtimeout time.Duration
	rbuf     []byte
	r, w     int
	wbuf     []byte
}

func newUpstreamConn(c net.Conn, idle time.Duration) *upstreamConn {
	return &upstreamConn{Conn: c, idle: idle, rbuf: make([]byte, 0, 16<<10)}
}

type tlsUpstreamConn struct {
	upstreamConn
	tc *tls.Conn
}

// Handshake implements network.ConnTLSer.
func (c *tlsUpstreamConn) Handshake() error { return c.tc.Handshake() }

// ConnectionState implements network.ConnTLSer.
func (c *tlsUpstreamConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

// SetReadTimeout implements network.Conn.
func (c *upstreamConn) SetReadTimeout(t time.Duration) error {
	c.first, c.useFirst = t, true
	return nil
}

// SetWriteTimeout implements network.Conn.
func (c *upstreamConn) SetWriteTimeout(t time.Duration) error {
	c.wtimeout = t
	return nil
}

// timeoutError marks a read that waited too long.
type timeoutError struct{ err error }

func (e timeoutError) Error() string { return "upstream read timeout: " + e.err.Error() }
func (e timeoutError) Unwrap() []error {
	return []error{e.err, biz.ErrUpstreamTimeout}
}
func (e timeoutError) Timeout() bool { return true }

// fill reads until at least n bytes are buffered.
func (c *upstreamConn) fill(n int) error {
	for c.w-c.r < n {
		if len(c.rbuf) == cap(c.rbuf) || cap(c.rbuf)-c.w < 4096 {
			// Grow into a new array: slices returned by Peek stay valid
			// until Release.
			nb := make([]byte, c.w-c.r, max(2*cap(c.rbuf), n+4096))
			copy(nb, c.rbuf[c.r:c.w])
			c.rbuf, c.w, c.r = nb, c.w-c.r, 0
		}
		t := c.idle
		if c.useFirst || t <= 0 {
			t = c.first
		}
		if t > 0 {
			_ = c.Conn.SetReadDeadline(time.Now().Add(t))
		}
		k, err := c.Conn.Read(c.rbuf[c.w:cap(c.rbuf)])
		c.rbuf = c.rbuf[:c.w+k]
		c.w += k
		if k > 0 {
			c.useFirst = false
		}
		if err != nil {
			if c.w-c.r >= n {
				return nil
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return timeoutError{err}
			}
			return err
		}
	}
	return nil
}

// Read implements io.Reader.
func (c *upstreamConn) Read(b []byte) (int, error) {
	if c.w == c.r {
		if err := c.fill(1); err != nil {
			return 0, err
		}
	}
	n := copy(b, c.rbuf[c.r:c.w])
	c.r += n
	return n, nil
}

// Peek implements network.Reader.
func (c *upstreamConn) Peek(n int) ([]byte, error) {
	if err := c.fill(n); err != nil {
		return c.rbuf[c.r:c.w], err
	}
	return c.rbuf[c.r : c.r+n], nil
}

// Skip implements network.Reader.
func (c *upstreamConn) Skip(n int) error {
	if err := c.fill(n); err != nil {
		return err
	}
	c.r += n
	return nil
}

// Release implements network.Reader.
func (c *upstreamConn) Release() error {
	if c.r == c.w {
		c.r, c.w, c.rbuf = 0, 0, c.rbuf[:0]
	}
	return nil
}

// Len implements network.Reader.
func (c *upstreamConn) Len() int { return c.w - c.r }

// ReadByte implements network.Reader.
func (c *upstreamConn) ReadByte() (byte, error) {
	if err := c.fill(1); err != nil {
		return 0, err
	}
	b := c.rbuf[c.r]
	c.r++
	return b, nil
}

// ReadBinary implements network.Reader.
func (c *upstreamConn) ReadBinary(n int) ([]byte, error) {
	if err := c.fill(n); err != nil {
		return nil, err
	}
	out := make([]byte, n)
	copy(out, c.rbuf[c.r:c.r+n])
	c.r += n
	return out, nil
}

// Malloc implements network.Writer.
func (c *upstreamConn) Malloc(n int) ([]byte, error) {
	l := len(c.wbuf)
	if cap(c.wbuf)-l < n {
		nb := make([]byte, l, 2*cap(c.wbuf)+n)
		copy(nb, c.wbuf)
		c.wbuf = nb
	}
	c.wbuf = c.wbuf[:l+n]
	return c.wbuf[l : l+n], nil
}

// WriteBinary implements network.Writer.
func (c *upstreamConn) WriteBinary(b []byte) (int, error) {
	c.wbuf = append(c.wbuf, b...)
	return len(b), nil
}

// Flush implements network.Writer.
func (c *upstreamConn) Flush() error {
	if len(c.wbuf) == 0 {
		return nil
	}
	if c.wtimeout > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.wtimeout))
	}
	_, err := c.Conn.Write(c.wbuf)
	c.wbuf = c.wbuf[:0]
	if err != nil {
		return fmt.Errorf("upstream write: %w", err)
	}
	return nil
}

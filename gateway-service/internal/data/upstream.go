// Package data implements the gateway's outbound ports: the Hertz client
// to upstream providers, billing-service (key verification, prices,
// account loading) and provider-service (snapshot) over internalapi, the
// Redis admission store and the offline tokenizer.
package data

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/cloudwego/hertz/pkg/app/client"
	errs "github.com/cloudwego/hertz/pkg/common/errors"
	"github.com/cloudwego/hertz/pkg/protocol"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
)

// UpstreamConfig tunes the provider clients.
type UpstreamConfig struct {
	MaxConnsPerHost int
	// AllowPrivateNetwork lets every provider reach restricted addresses
	// (tests only).
	AllowPrivateNetwork bool
}

// Upstream sends requests to providers with one Hertz client per
// provider (its own pool, dialer and timeouts), streaming response bodies
// (WithResponseBodyStream).
type Upstream struct {
	cfg     UpstreamConfig
	mu      sync.Mutex
	clients map[string]*providerClient
}

type providerClient struct {
	key string // what the client was built from
	c   *client.Client
}

// NewUpstream returns an Upstream.
func NewUpstream(cfg UpstreamConfig) *Upstream {
	return &Upstream{cfg: cfg, clients: map[string]*providerClient{}}
}

func (u *Upstream) client(p *biz.Provider) (*client.Client, error) {
	allow := p.AllowPrivateNetwork || u.cfg.AllowPrivateNetwork
	key := p.BaseURL + "|" + p.Timeouts.Connect.String() + "|" + p.Timeouts.FirstByte.String() + "|" + p.Timeouts.Idle.String()
	if allow {
		key += "|private"
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if pc := u.clients[p.ID]; pc != nil && pc.key == key {
		return pc.c, nil
	}
	c, err := client.NewClient(
		// WithTLSConfig also installs Hertz's standard dialer: it must come
		// before WithDialer, or the dial-time guard and the idle timeout
		// would silently be gone (upstream_test.go checks both).
		client.WithTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}),
		client.WithDialer(&dialer{allowPrivate: allow, idle: p.Timeouts.Idle}),
		client.WithDialTimeout(p.Timeouts.Connect),
		client.WithClientReadTimeout(p.Timeouts.FirstByte),
		client.WithWriteTimeout(30*time.Second),
		client.WithResponseBodyStream(true),
		client.WithMaxConnsPerHost(u.cfg.MaxConnsPerHost),
		client.WithMaxIdleConnDuration(90*time.Second),
		client.WithKeepAlive(true),
		client.WithNoDefaultUserAgentHeader(true),
	)
	if err != nil {
		return nil, err
	}
	if old := u.clients[p.ID]; old != nil {
		// The provider changed (address, timeouts): close the old pool's
		// idle connections now. Those still in use go back to it and its
		// idle cleaner closes them; nothing sends on it again.
		old.c.CloseIdleConnections()
	}
	u.clients[p.ID] = &providerClient{key: key, c: c}
	return c, nil
}

// Do implements biz.Upstream.
func (u *Upstream) Do(ctx context.Context, r *biz.UpstreamRequest) (biz.UpstreamResponse, error) {
	c, err := u.client(r.Provider)
	if err != nil {
		return nil, errors.Join(biz.ErrUpstreamConnect, err)
	}
	req := protocol.AcquireRequest()
	resp := protocol.AcquireResponse()
	req.SetMethod(r.Method)
	req.SetRequestURI(r.URL)
	for _, h := range r.Headers {
		req.Header.Set(h.Key, h.Value)
	}
	if len(req.Header.ContentType()) == 0 {
		req.Header.SetContentTypeBytes([]byte("application/json"))
	}
	otel.GetTextMapPropagator().Inject(ctx, headerCarrier{&req.Header})
	req.SetBodyRaw(r.Body)
	// The connect and first-byte timeouts are the provider client's own
	// (client() builds one per provider and timeouts).
	err = c.Do(ctx, req, resp)
	protocol.ReleaseRequest(req)
	if err != nil {
		protocol.ReleaseResponse(resp)
		return nil, classify(err)
	}
	ur := &upstreamResponse{resp: resp, body: resp.BodyStream()}
	if r.Timeouts.Total > 0 {
		// The total timeout interrupts even a read that is blocked.
		ur.timer = time.AfterFunc(r.Timeouts.Total, ur.forceClose)
	}
	return ur, nil
}

// classify maps a client error to the relay's failure classes.
func classify(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, biz.ErrUpstreamConnect), errors.Is(err, biz.ErrUpstreamTimeout):
		return err
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, errs.ErrTimeout),
		errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return errors.Join(biz.ErrUpstreamTimeout, err)
	default:
		return errors.Join(biz.ErrUpstreamConnect, err)
	}
}

type upstreamResponse struct {
	resp  *protocol.Response
	body  io.Reader
	timer *time.Timer
	mu    sync.Mutex
	done  bool
	eof   bool
}

func (r *upstreamResponse) StatusCode() int { return r.resp.StatusCode() }

func (r *upstreamResponse) Header(name string) string { return string(r.resp.Header.Peek(name)) }

func (r *upstreamResponse) VisitHeaders(f func(k, v []byte)) { r.resp.Header.VisitAll(f) }

func (r *upstreamResponse) Body() io.Reader { return r }

// Read reads the body, remembering a clean end so Close can return the
// connection to the pool.
func (r *upstreamResponse) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	if errors.Is(err, io.EOF) {
		r.eof = true
	} else if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && !errors.Is(err, biz.ErrUpstreamTimeout) {
			err = errors.Join(biz.ErrUpstreamTimeout, err)
		}
	}
	return n, err
}

type forceCloser interface{ ForceClose() error }

// forceClose closes the connection under a blocked read.
func (r *upstreamResponse) forceClose() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	if fc, ok := r.body.(forceCloser); ok {
		_ = fc.ForceClose()
	}
}

// Close implements biz.UpstreamResponse: a fully read body returns the
// connection to the pool; anything else closes it (never reads the rest).
func (r *upstreamResponse) Close() {
	if r.timer != nil {
		r.timer.Stop()
	}
	r.mu.Lock()
	if !r.eof {
		if fc, ok := r.body.(forceCloser); ok {
			_ = fc.ForceClose()
		}
	}
	r.done = true
	r.mu.Unlock()
	_ = r.resp.CloseBodyStream()
	protocol.ReleaseResponse(r.resp)
}

// headerCarrier lets the OTel propagator write traceparent into a Hertz
// request header.
type headerCarrier struct{ h *protocol.RequestHeader }

func (c headerCarrier) Get(k string) string { return string(c.h.Peek(k)) }
func (c headerCarrier) Set(k, v string)     { c.h.Set(k, v) }
func (c headerCarrier) Keys() []string      { return nil }

var _ propagation.TextMapCarrier = headerCarrier{}

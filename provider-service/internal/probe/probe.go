// Package probe checks an upstream provider with one of its keys: it sends
// a one-token generate request ("ping", output cap 1, not streamed) built
// by the wire adapter of the provider's type — the same writer the
// gateway's relay uses, so the probe cannot disagree with the relay about
// URLs, api versions or headers — and reports reachability, whether the
// key was accepted, the status, the latency and the upstream's error
// message as the adapter reads it.
package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/lurus-switch/lurus-switch/lurus-common/netguard"
	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire/adapters"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/biz"
)

// Prober implements biz.Prober over HTTP.
type Prober struct {
	timeout time.Duration
	guarded *http.Client // dials only public addresses (netguard.Control)
	open    *http.Client // for allow_private_network providers
}

var _ biz.Prober = (*Prober)(nil)

// New returns a prober whose every probe is bounded by timeout.
func New(timeout time.Duration) *Prober {
	return &Prober{timeout: timeout, guarded: newClient(timeout, netguard.Control), open: newClient(timeout, nil)}
}

func newClient(timeout time.Duration, control func(string, string, syscall.RawConn) error) *http.Client {
	d := &net.Dialer{Timeout: timeout, Control: control}
	return &http.Client{
		Transport: &http.Transport{
			// No proxy: a proxy would dial the upstream on our behalf and
			// bypass the address check.
			Proxy:                 nil,
			DialContext:           d.DialContext,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       30 * time.Second,
		},
		// Never follow a redirect: it would carry the key to another URL.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// ping is the probe's call: a one-token generate request. Unlike a
// model-list call it proves what the gateway relies on — the key, the
// URL the adapter writes and the model — at the price of a few tokens.
func ping() *wire.Request {
	return &wire.Request{Op: wire.OpGenerate, MaxOutputTokens: 1,
		Messages: []wire.Message{{Role: wire.RoleUser, Parts: []wire.Part{{Kind: wire.PartText, Text: "ping"}}}}}
}

// call is a built probe request and the reader of its error bodies.
type call struct {
	req         *http.Request
	decodeError func(body []byte) string
}

// build makes the probe request for t: ping written by the wire adapter
// of t's provider type (URL, credential headers, body, exactly as the
// gateway's relay writes them), with the provider's extra headers
// underneath the adapter's.
func build(ctx context.Context, t biz.ProbeTarget) (call, error) {
	w, ok := adapters.Writer(t.Type)
	if !ok {
		return call{}, fmt.Errorf("unknown provider type %q", t.Type)
	}
	hr, err := w.WriteRequest(ping(), wire.Upstream{Type: t.Type, BaseURL: t.BaseURL, APIVersion: t.APIVersion, Secret: t.Secret, Model: t.Model})
	if err != nil {
		return call{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hr.URL, bytes.NewReader(hr.Body))
	if err != nil {
		return call{}, err
	}
	for k, v := range t.Headers {
		req.Header.Set(k, v)
	}
	for _, h := range hr.Headers {
		req.Header.Set(h.Key, h.Value)
	}
	setCommon(req)
	c := call{req: req, decodeError: func([]byte) string { return "" }}
	if d, ok := adapters.ErrorDecoder(t.Type); ok {
		c.decodeError = d.DecodeError
	}
	return c, nil
}

func setCommon(req *http.Request) {
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "lurus-provider-service/probe")
}

// Probe implements biz.Prober.
func (p *Prober) Probe(ctx context.Context, t biz.ProbeTarget) biz.ProbeResult {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	c, err := build(ctx, t)
	if err != nil {
		return biz.ProbeResult{Error: err.Error()}
	}
	client := p.guarded
	if t.AllowPrivateNetwork {
		client = p.open
	}
	start := time.Now()
	resp, err := client.Do(c.req)
	latency := time.Since(start).Milliseconds()
	if err != nil {
		return biz.ProbeResult{LatencyMs: latency, Error: describe(err, p.timeout)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	r := biz.ProbeResult{Reachable: true, StatusCode: resp.StatusCode, LatencyMs: latency,
		AuthOK: resp.StatusCode >= 200 && resp.StatusCode < 300}
	if !r.AuthOK {
		r.Error = fmt.Sprintf("upstream answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
		if msg := c.decodeError(body); msg != "" {
			r.Error += ": " + telemetry.RedactString(cut(msg, 200))
		}
	}
	return r
}

// cut shortens s to at most n bytes on a rune boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// describe turns a transport error into a short message without the URL
// (which is the admin's own) or anything secret.
func describe(err error, timeout time.Duration) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, netguard.ErrPrivate):
		return "refused: the upstream address is private or loopback and allow_private_network is off"
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fmt.Sprintf("no answer within %s", timeout)
	case errors.As(err, &dnsErr):
		return "host does not resolve: " + dnsErr.Name
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return telemetry.RedactString(err.Error())
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

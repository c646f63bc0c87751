// Package probe checks an upstream provider with one of its keys: it calls
// the vendor's model-list endpoint, which every vendor authenticates and
// none bills, and reports reachability, whether the key was accepted, the
// status and the latency.
package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/netguard"
	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/biz"
)

// DefaultAnthropicVersion is sent as anthropic-version when the provider
// has no api_version.
const DefaultAnthropicVersion = "2023-06-01"

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

// Request builds the probe request for t: the model-list endpoint of its
// vendor with the key where that vendor's SDK puts it.
func Request(ctx context.Context, t biz.ProbeTarget) (*http.Request, error) {
	base := strings.TrimRight(t.BaseURL, "/")
	var target string
	h := http.Header{}
	switch t.Type {
	case internalapi.TypeOpenAI, internalapi.TypeOpenAICompatible:
		target = base + "/models"
		h.Set("Authorization", "Bearer "+t.Secret)
	case internalapi.TypeAzureOpenAI:
		target = base + "/openai/models?api-version=" + url.QueryEscape(t.APIVersion)
		h.Set("api-key", t.Secret)
	case internalapi.TypeAnthropic:
		target = base + "/v1/models"
		h.Set("x-api-key", t.Secret)
		v := t.APIVersion
		if v == "" {
			v = DefaultAnthropicVersion
		}
		h.Set("anthropic-version", v)
	case internalapi.TypeGemini:
		target = base + "/v1beta/models"
		h.Set("x-goog-api-key", t.Secret)
	default:
		return nil, fmt.Errorf("unknown provider type %q", t.Type)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range t.Headers {
		req.Header.Set(k, v)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "lurus-provider-service/probe")
	return req, nil
}

// Probe implements biz.Prober.
func (p *Prober) Probe(ctx context.Context, t biz.ProbeTarget) biz.ProbeResult {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := Request(ctx, t)
	if err != nil {
		return biz.ProbeResult{Error: err.Error()}
	}
	client := p.guarded
	if t.AllowPrivateNetwork {
		client = p.open
	}
	start := time.Now()
	resp, err := client.Do(req)
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
		if msg := upstreamMessage(body); msg != "" {
			r.Error += ": " + msg
		}
	}
	return r
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

// upstreamMessage extracts a vendor error message (OpenAI/Anthropic
// {"error":{"message"}}, Gemini {"error":{"message","status"}}), cut and
// redacted.
func upstreamMessage(body []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error.Message == "" {
		return ""
	}
	msg := e.Error.Message
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	return telemetry.RedactString(msg)
}

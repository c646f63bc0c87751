package config

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/clientip"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

// Server is the listener every service configures under `server:`. A
// service embeds it inline in its own server struct, next to the settings
// only its transport has.
type Server struct {
	// Addr is the listen address, host:port (port 0 picks a free one).
	// Every service defaults to loopback; a container sets
	// LURUS_<SERVICE>_ADDR=0.0.0.0:<port>.
	Addr string `yaml:"addr"`
	// MaxBodyBytes caps request bodies; a larger one is answered 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ShutdownTimeout bounds the drain of in-flight requests on SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// Check adds the problems of s to p: addr must be host:port,
// max_body_bytes at least minBody and shutdown_timeout positive.
func (s Server) Check(p *Problems, minBody int64) {
	if _, _, err := net.SplitHostPort(s.Addr); err != nil {
		p.Add(fmt.Errorf("server.addr: %w", err))
	}
	p.Check(s.MaxBodyBytes >= minBody, "server.max_body_bytes %d is below %d", s.MaxBodyBytes, minBody)
	p.Check(s.ShutdownTimeout > 0, "server.shutdown_timeout must be positive")
}

// Proxies is the server.trusted_proxies setting; a service that resolves
// client addresses embeds it in its server struct.
type Proxies struct {
	// TrustedProxies are the CIDRs of reverse proxies (the ingress, Caddy)
	// whose X-Forwarded-For is believed when finding the client address
	// (see lurus-common/clientip). Empty: the socket peer is the client.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// ClientIP is the resolver the CIDRs describe; its error names the key.
func (t Proxies) ClientIP() (clientip.Resolver, error) {
	r, err := clientip.Parse(t.TrustedProxies)
	if err != nil {
		return clientip.Resolver{}, fmt.Errorf("server.trusted_proxies: %w", err)
	}
	return r, nil
}

// CheckProxies adds the problem of the CIDRs to p (named after the key,
// as ClientIP's error is). It is not called Check because a server struct
// embeds Proxies beside Server, whose Check it would hide.
func (t Proxies) CheckProxies(p *Problems) {
	_, err := t.ClientIP()
	p.Add(err)
}

// Log is the logger section every service has.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
}

// SetDefaults sets the level every service starts with (info) unless set.
func (l *Log) SetDefaults() { Default(&l.Level, "info") }

// Problems collects what a Validate method finds, so a config with
// several mistakes reports them all at once.
type Problems struct {
	errs []error
}

// Add records err (nil is ignored).
func (p *Problems) Add(err error) {
	if err != nil {
		p.errs = append(p.errs, err)
	}
}

// Addf records a problem described by format and args (%w wraps).
func (p *Problems) Addf(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf(format, args...))
}

// In records err, when not nil, as a problem of the setting key
// ("key: err", wrapping err): for a section checked by its own Validate.
func (p *Problems) In(key string, err error) {
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("%s: %w", key, err))
	}
}

// Check records the problem described by format and args unless ok.
func (p *Problems) Check(ok bool, format string, args ...any) {
	if !ok {
		p.Addf(format, args...)
	}
}

// Err joins what was recorded (nil when nothing was).
func (p *Problems) Err() error { return errors.Join(p.errs...) }

// NATS is the connection section every service has.
type NATS struct {
	URL string `yaml:"url"`
	// Namespace prefixes every stream and subject ("" in production; tests
	// and E2E runs use a random one so they never collide).
	Namespace string `yaml:"namespace"`
}

// SetDefaults sets the URL every service defaults to (the local server)
// unless set.
func (n *NATS) SetDefaults() { Default(&n.URL, "nats://127.0.0.1:4222") }

// Check adds the problems of n to p: url is required, and a namespace
// must be one subject token (events.ValidToken), since every subject and
// stream name is built from it.
func (n NATS) Check(p *Problems) {
	p.Check(n.URL != "", "nats.url is required")
	p.Check(n.Namespace == "" || events.ValidToken(n.Namespace), "nats.namespace %q is not a subject token", n.Namespace)
}

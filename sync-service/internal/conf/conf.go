// Package conf is sync-service's configuration: one plain struct loaded from
// configs/config.yaml (with ${ENV} expansion), defaults set before decoding
// and Validate run after. Secrets are not here: they come from the
// environment through config.Secret.
package conf

import (
	"strings"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/authguard"
	"github.com/lurus-switch/lurus-switch/lurus-common/clientip"
	"github.com/lurus-switch/lurus-switch/lurus-common/config"
	"github.com/lurus-switch/lurus-switch/lurus-common/keyauth"
	"github.com/lurus-switch/lurus-switch/lurus-common/redisx"
)

// Config is the whole sync-service configuration.
type Config struct {
	Server  Server        `yaml:"server"`
	Log     config.Log    `yaml:"log"`
	NATS    NATS          `yaml:"nats"`
	Redis   redisx.Config `yaml:"redis"`
	Billing Billing       `yaml:"billing"`
	Auth    Auth          `yaml:"auth"`
	WS      WS            `yaml:"ws"`
	Runtime Runtime       `yaml:"runtime"`
}

// Runtime tunes the Go runtime.
type Runtime struct {
	// GCPercent is the garbage collector's target (GOGC) when the GOGC
	// environment variable is not set. Most of this service's heap is
	// long-lived per-connection state and it allocates little per second,
	// so a low value costs little CPU and keeps the process's RSS close to
	// its live memory (see docs/sync-service.md). -1 turns the GC off.
	GCPercent int `yaml:"gc_percent"`
}

// Server is the HTTP listener. max_body_bytes caps the plain HTTP
// routes; shutdown_timeout bounds closing every WebSocket with 1001 and
// draining its queue; the trusted proxies give the client address for a
// key's IP allow-list.
type Server struct {
	config.Server  `yaml:",inline"`
	config.Proxies `yaml:",inline"`
	// ReadHeaderTimeout bounds reading a request's headers (slowloris).
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// Pprof serves /debug/pprof/ on the same listener (off by default).
	Pprof bool `yaml:"pprof"`
}

// NATS is the NATS connection.
type NATS struct {
	config.NATS    `yaml:",inline"`
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

// Billing is how billing-service's internal routes are reached.
type Billing struct {
	URL     string        `yaml:"url"`
	Timeout time.Duration `yaml:"timeout"`
}

// Auth is authentication of WebSocket clients.
type Auth struct {
	// KeyCacheTTL is how long a verified key is trusted without asking
	// billing again (at most 60 s; key.changed evicts at once).
	KeyCacheTTL time.Duration `yaml:"key_cache_ttl"`
	// NegativeCacheTTL is how long a refused key is refused without asking
	// billing again (at most 5 s).
	NegativeCacheTTL time.Duration `yaml:"negative_cache_ttl"`
	// KeyCacheSize bounds the number of cached verifications.
	KeyCacheSize int `yaml:"key_cache_size"`
	// MaxRefusals bounds the refused keys held, apart from the verified
	// ones, so a flood of random keys never evicts them (10000).
	MaxRefusals int `yaml:"max_refusals"`
	// Failures caps failed authentications (no, unknown or revoked key,
	// invalid ticket) per client address on the ticket and WebSocket
	// routes (lurus-common/authguard: 30 per minute, then 429 for 5 min;
	// per process).
	Failures authguard.Config `yaml:"failures"`
	// TicketTTL is how long a ticket from POST /api/v1/sync/ticket can be
	// redeemed (once).
	TicketTTL time.Duration `yaml:"ticket_ttl"`
	// AllowedOrigins lists the browser origins allowed to open a socket or
	// ask for a ticket: exact "scheme://host[:port]" or "scheme://*.domain".
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// WS tunes WebSocket connections.
type WS struct {
	// PingInterval is how often the server pings; a connection from which
	// nothing (pong or message) arrived for 2 × PingInterval + PongWait is
	// closed.
	PingInterval time.Duration `yaml:"ping_interval"`
	PongWait     time.Duration `yaml:"pong_wait"`
	// WriteTimeout bounds one write to a socket.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// CloseGrace is how long the server waits for the client's close frame
	// after sending its own.
	CloseGrace time.Duration `yaml:"close_grace"`
	// HandshakeTimeout bounds the upgrade.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// ReadLimitBytes is the largest client message; a larger one closes the
	// connection with 1009.
	ReadLimitBytes int64 `yaml:"read_limit_bytes"`
	// ReadBufferBytes and WriteBufferBytes size the I/O buffers. Write
	// buffers come from a pool, so an idle connection holds none.
	ReadBufferBytes  int `yaml:"read_buffer_bytes"`
	WriteBufferBytes int `yaml:"write_buffer_bytes"`
	// SendQueue is the per-connection queue of live events; a client that
	// falls further behind is disconnected with 4008.
	SendQueue int `yaml:"send_queue"`
	// ControlQueue is the per-connection queue of replies (pong,
	// sync_state, error); overflowing it closes the connection with 1008.
	ControlQueue int `yaml:"control_queue"`
	// MessageRate and MessageBurst limit client messages per second; a
	// client over the limit is closed with 1008.
	MessageRate  float64 `yaml:"message_rate"`
	MessageBurst int     `yaml:"message_burst"`
	// MaxReplay bounds the events replayed on a resume; beyond it the
	// client gets a sync_state instead.
	MaxReplay int `yaml:"max_replay"`
	// SyncTimeout bounds one sync state read from billing.
	SyncTimeout time.Duration `yaml:"sync_timeout"`
	// MaxPerUser and MaxPerIP cap open connections of one user (20) and
	// from one client address (100) in this process; the connection past
	// either is accepted and closed at once with 4029.
	MaxPerUser int `yaml:"max_per_user"`
	MaxPerIP   int `yaml:"max_per_ip"`
	// MaxResumes caps resumes (last_event_id, each a JetStream consumer)
	// running at once in this process (64); a resume beyond it waits up
	// to ResumeWait (1 s), then its upgrade gets 503 UNAVAILABLE with
	// Retry-After.
	MaxResumes int           `yaml:"max_resumes"`
	ResumeWait time.Duration `yaml:"resume_wait"`
}

// SetDefaults fills every field with its default; the file overrides them.
func (c *Config) SetDefaults() {
	c.Server = Server{Server: config.Server{Addr: "127.0.0.1:18104", MaxBodyBytes: 4 << 10, ShutdownTimeout: 15 * time.Second},
		ReadHeaderTimeout: 10 * time.Second}
	c.Log.SetDefaults()
	c.NATS = NATS{ConnectTimeout: 5 * time.Second}
	c.NATS.NATS.SetDefaults()
	c.Redis = redisx.Config{Addr: "127.0.0.1:6379", Prefix: "lurus:sync:"}
	c.Redis.SetDefaults()
	c.Billing = Billing{URL: "http://127.0.0.1:18103", Timeout: 5 * time.Second}
	c.Auth = Auth{
		KeyCacheTTL:      60 * time.Second,
		NegativeCacheTTL: 5 * time.Second,
		KeyCacheSize:     100_000,
		MaxRefusals:      10_000,
		TicketTTL:        60 * time.Second,
	}
	c.Auth.Failures.SetDefaults()
	c.Runtime = Runtime{GCPercent: 100}
	c.WS = WS{
		PingInterval:     30 * time.Second,
		PongWait:         10 * time.Second,
		WriteTimeout:     10 * time.Second,
		CloseGrace:       2 * time.Second,
		HandshakeTimeout: 10 * time.Second,
		ReadLimitBytes:   4 << 10,
		ReadBufferBytes:  512,
		WriteBufferBytes: 4 << 10,
		SendQueue:        16,
		ControlQueue:     8,
		MessageRate:      10,
		MessageBurst:     20,
		MaxReplay:        1000,
		SyncTimeout:      5 * time.Second,
		MaxPerUser:       20,
		MaxPerIP:         100,
		MaxResumes:       64,
		ResumeWait:       time.Second,
	}
}

// Validate checks the loaded config.
func (c *Config) Validate() error {
	var p config.Problems
	check := p.Check
	c.Server.Check(&p, 1)
	c.Server.CheckProxies(&p)
	c.NATS.Check(&p)
	p.Add(c.Redis.Validate())
	check(strings.HasPrefix(c.Billing.URL, "http://") || strings.HasPrefix(c.Billing.URL, "https://"), "billing.url must be an http(s) URL")
	check(c.Billing.Timeout > 0, "billing.timeout must be positive")
	p.In("auth.key_cache_ttl / auth.negative_cache_ttl", c.KeyCache().Validate())
	check(c.Auth.KeyCacheSize > 0, "auth.key_cache_size must be positive")
	check(c.Auth.MaxRefusals > 0, "auth.max_refusals must be positive")
	p.In("auth.failures", c.Auth.Failures.Validate())
	check(c.Auth.TicketTTL >= time.Second && c.Auth.TicketTTL <= 10*time.Minute, "auth.ticket_ttl must be in [1s, 10m]")
	for _, o := range c.Auth.AllowedOrigins {
		check(validOriginPattern(o), "auth.allowed_origins: %q is not scheme://host[:port] or scheme://*.domain", o)
	}
	w := c.WS
	check(w.PingInterval >= 100*time.Millisecond, "ws.ping_interval must be at least 100ms")
	check(w.PongWait > 0, "ws.pong_wait must be positive")
	check(w.WriteTimeout > 0, "ws.write_timeout must be positive")
	check(w.CloseGrace >= 0, "ws.close_grace must not be negative")
	check(w.HandshakeTimeout > 0, "ws.handshake_timeout must be positive")
	check(w.ReadLimitBytes >= 256, "ws.read_limit_bytes must be at least 256")
	check(w.ReadBufferBytes >= 256, "ws.read_buffer_bytes must be at least 256")
	check(w.WriteBufferBytes >= 256, "ws.write_buffer_bytes must be at least 256")
	check(w.SendQueue >= 1, "ws.send_queue must be positive")
	check(w.ControlQueue >= 1, "ws.control_queue must be positive")
	check(w.MessageRate > 0 && w.MessageBurst >= 1, "ws.message_rate and ws.message_burst must be positive")
	check(w.MaxReplay >= 0, "ws.max_replay must not be negative")
	check(w.SyncTimeout > 0, "ws.sync_timeout must be positive")
	check(w.MaxPerUser >= 1 && w.MaxPerIP >= 1, "ws.max_per_user and ws.max_per_ip must be positive")
	check(w.MaxResumes >= 1 && w.ResumeWait > 0, "ws.max_resumes and ws.resume_wait must be positive")
	check(c.Runtime.GCPercent == -1 || c.Runtime.GCPercent >= 10 && c.Runtime.GCPercent <= 1000, "runtime.gc_percent must be -1 or in [10, 1000]")
	return p.Err()
}

// ClientIP is the client address resolver Server.TrustedProxies describe.
func (c *Config) ClientIP() (clientip.Resolver, error) { return c.Server.ClientIP() }

// KeyCache is the keyauth cache configuration of Auth (no stale serving:
// a connection can wait for billing).
func (c *Config) KeyCache() keyauth.Config {
	return keyauth.Config{PositiveTTL: c.Auth.KeyCacheTTL, NegativeTTL: c.Auth.NegativeCacheTTL,
		MaxEntries: c.Auth.KeyCacheSize, MaxNegative: c.Auth.MaxRefusals, VerifyTimeout: c.Billing.Timeout}
}

// Load reads and validates the configuration file at path.
func Load(path string) (Config, error) {
	var c Config
	err := config.Load(path, &c)
	return c, err
}

func validOriginPattern(o string) bool {
	scheme, host, ok := strings.Cut(o, "://")
	if !ok || scheme == "" || host == "" || strings.ContainsAny(host, "/?#@ ") {
		return false
	}
	host = strings.TrimPrefix(host, "*.")
	return host != "" && !strings.Contains(host, "*")
}

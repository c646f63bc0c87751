// Package conf is the gateway's configuration: one plain struct loaded from
// configs/config.yaml (with ${ENV} expansion) plus the secrets, which come
// only from the environment.
package conf

import (
	"strings"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/authguard"
	"github.com/lurus-switch/lurus-switch/lurus-common/config"
	"github.com/lurus-switch/lurus-switch/lurus-common/keyauth"
	"github.com/lurus-switch/lurus-switch/lurus-common/modelglob"
	"github.com/lurus-switch/lurus-switch/lurus-common/redisx"
)

// Config is the whole gateway configuration.
type Config struct {
	Server    Server        `yaml:"server"`
	Log       Log           `yaml:"log"`
	Billing   Service       `yaml:"billing"`
	Provider  Service       `yaml:"provider"`
	Redis     redisx.Config `yaml:"redis"`
	NATS      config.NATS   `yaml:"nats"`
	Admission Admission     `yaml:"admission"`
	Auth      Auth          `yaml:"auth"`
	Upstream  Upstream      `yaml:"upstream"`
	Relay     Relay         `yaml:"relay"`
	Breaker   Breaker       `yaml:"breaker"`
	Events    Events        `yaml:"events"`
	Estimate  Estimate      `yaml:"estimate"`
	Runtime   Runtime       `yaml:"runtime"`
}

// Runtime tunes the Go runtime.
type Runtime struct {
	// GCPercent is the garbage collector's target (GOGC) when the GOGC
	// environment variable is not set (default 400). The gateway's heap is
	// small and short-lived per request, so a higher target trades a few
	// tens of MiB for noticeably less CPU per request (docs/gateway-service.md).
	GCPercent int `yaml:"gc_percent"`
}

// Server is the HTTP listener: addr (default 127.0.0.1:18100),
// max_body_bytes (larger bodies get 413 in the caller's format; default
// 32 MiB), shutdown_timeout (default 60 s) and trusted_proxies.
type Server struct {
	config.Server  `yaml:",inline"`
	config.Proxies `yaml:",inline"`
	// ReadTimeout bounds reading a request (default 60 s).
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// IdleTimeout closes idle keep-alive connections (default 120 s).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// PprofAddr, when set, serves the Go profiler there (keep it on
	// loopback); empty turns it off (default).
	PprofAddr string `yaml:"pprof_addr"`
}

// Log is the logger.
type Log struct {
	config.Log `yaml:",inline"`
	// FlushInterval buffers log lines and writes them out this often (and
	// when 64 KiB are buffered, and on shutdown) instead of one write per
	// line (default 100 ms; a negative value writes every line at once). A
	// hard crash loses at most this long of lines.
	FlushInterval time.Duration `yaml:"flush_interval"`
}

// Service is an internal dependency reached over HTTP.
type Service struct {
	URL string `yaml:"url"`
	// Timeout bounds one internal call (default 3 s).
	Timeout time.Duration `yaml:"timeout"`
	// Refresh is the polling interval of the cached data (prices,
	// provider snapshot; default 30 s).
	Refresh time.Duration `yaml:"refresh"`
}

// Admission is the Redis reservation step.
type Admission struct {
	// ReservationTTL is how long a reservation holds funds when billing
	// never settles it (default 10 min).
	ReservationTTL time.Duration `yaml:"reservation_ttl"`
	// FailOpenMaxMicros, when > 0, admits a request whose estimate is at
	// most this many micro-USD while Redis is down; 0 (default) fails closed
	// with 503.
	FailOpenMaxMicros int64 `yaml:"fail_open_max_micros"`
	// Senders is how many pipelined batches of reservations may be in
	// flight to Redis at once (default 2); MaxBatch caps one batch
	// (default 64). Under load one round trip then serves many requests.
	Senders  int `yaml:"senders"`
	MaxBatch int `yaml:"max_batch"`
	// LeaseFactor: the gateway holds one lease per API key in Redis and
	// admits requests against it without a round trip; a lease is
	// extended by LeaseFactor × the request's estimate (default 20), at most
	// 1/LeaseMaxShare of what the user had available (default 8). 1 turns
	// leasing off (a reservation per request). LeaseIdle returns an unused
	// lease (default 30 s); reservation_ttl is its life without renewal.
	// LeaseWindow: a busy key's extension covers this much of its traffic
	// at its recent rate when that is more than LeaseFactor estimates
	// (default 250 ms), so extensions stay a few per second at any rate.
	LeaseWindow time.Duration `yaml:"lease_window"`
	// LeasePrefetch extends a lease in the background once three quarters
	// of its last extension are given out, so a steady key's requests do
	// not wait for Redis (default true).
	LeasePrefetch *bool         `yaml:"lease_prefetch"`
	LeaseFactor   int64         `yaml:"lease_factor"`
	LeaseMaxShare int64         `yaml:"lease_max_share"`
	LeaseIdle     time.Duration `yaml:"lease_idle"`
	// LeaseCheck is how often a lease in use is renewed and compared with
	// Redis (default 5 s): after a Redis flush at most one extension per
	// key is admitted without a hold, for at most this long.
	LeaseCheck time.Duration `yaml:"lease_check"`
}

// Auth is the key cache.
type Auth struct {
	// PositiveTTL is how long a verified key is trusted without asking
	// billing again (default 60 s, at most 60 s).
	PositiveTTL time.Duration `yaml:"positive_ttl"`
	// NegativeTTL is how long an unknown key is refused without asking
	// again (default 5 s, at most 5 s).
	NegativeTTL time.Duration `yaml:"negative_ttl"`
	// StaleTTL is how long past positive_ttl a verified key is still
	// served while it is re-verified in the background or while billing
	// cannot answer (default 5 min, at most 5 min; a negative value turns
	// it off). Revocations still apply at once through key.changed.
	StaleTTL time.Duration `yaml:"stale_ttl"`
	// MaxEntries bounds the verified keys held (default 100000).
	MaxEntries int `yaml:"max_entries"`
	// MaxRefusals bounds the refused keys held, apart from the verified
	// ones, so a flood of random keys never evicts them (default 10000).
	MaxRefusals int `yaml:"max_refusals"`
	// Failures caps failed authentications per client address on the
	// relay routes (lurus-common/authguard: 30 per minute, then 429 for
	// 5 min; per gateway process).
	Failures authguard.Config `yaml:"failures"`
}

// KeyCache is the keyauth cache configuration these settings describe.
func (a Auth) KeyCache() keyauth.Config {
	return keyauth.Config{PositiveTTL: a.PositiveTTL, NegativeTTL: a.NegativeTTL, StaleTTL: max(a.StaleTTL, 0),
		MaxEntries: a.MaxEntries, MaxNegative: a.MaxRefusals}
}

// Upstream are the default call timeouts, used when a provider sets none.
type Upstream struct {
	ConnectTimeout   time.Duration `yaml:"connect_timeout"`    // default 5 s
	FirstByteTimeout time.Duration `yaml:"first_byte_timeout"` // default 60 s
	IdleTimeout      time.Duration `yaml:"idle_timeout"`       // default 60 s
	TotalTimeout     time.Duration `yaml:"total_timeout"`      // default 10 min
	// MaxConnsPerHost sizes each provider's pool; streams hold a
	// connection for their whole life (default 1024).
	MaxConnsPerHost int `yaml:"max_conns_per_host"`
	// MaxResponseBytes caps a non-streamed upstream body (default 64 MiB).
	MaxResponseBytes int `yaml:"max_response_bytes"`
	// AllowPrivateNetwork lets every provider reach loopback and private
	// ranges (tests only; production marks single providers instead).
	AllowPrivateNetwork bool `yaml:"allow_private_network"`
}

// Relay tunes failover and streaming.
type Relay struct {
	// MaxAttempts caps upstream attempts of one request (default 3).
	MaxAttempts int `yaml:"max_attempts"`
	// RetryRatio is the retry credit each request earns (default 0.2:
	// attempts stay ≤ 1.2 × requests under persistent failure).
	RetryRatio float64 `yaml:"retry_ratio"`
	// RetryBurst caps the saved retry credit (default 10).
	RetryBurst float64 `yaml:"retry_burst"`
	// DrainTimeout bounds reading upstream after the client went away, so
	// the real usage is still known (default 30 s).
	DrainTimeout time.Duration `yaml:"drain_timeout"`
}

// Breaker is the per provider key circuit breaker.
type Breaker struct {
	// ConsecutiveFailures opens the breaker (default 5).
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// FailureRate opens it when at least MinRequests were seen in Window
	// and this share failed (default 0.5; 0 disables).
	FailureRate float64       `yaml:"failure_rate"`
	MinRequests int           `yaml:"min_requests"` // default 20
	Window      time.Duration `yaml:"window"`       // default 30 s
	// Cooldown is how long it stays open before one probe (default 10 s).
	Cooldown time.Duration `yaml:"cooldown"`
}

// Events is the publishing of billing.usage and log.write.
type Events struct {
	// QueueSize bounds the in-memory queue (default 8192); a full queue
	// spills to the outbox.
	QueueSize int `yaml:"queue_size"`
	// OutboxDir holds the file outbox used while NATS is unreachable.
	OutboxDir string `yaml:"outbox_dir"`
	// OutboxSync is the fsync policy: "always" (every append) or "batch"
	// (once per written batch, default).
	OutboxSync string `yaml:"outbox_sync"`
	// PublishTimeout bounds waiting for PubAcks (default 5 s).
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	// MaxInFlight bounds unacknowledged async publishes (default 512).
	MaxInFlight int `yaml:"max_in_flight"`
	// Linger is how long the publisher waits for more events once one
	// arrived, so several requests' events go out in one round of writes
	// and acks (default 10 ms; events are never on a response's path, but
	// each round wakes NATS and the publisher, which costs requests in
	// flight latency when rounds are small).
	Linger time.Duration `yaml:"linger"`
	// BatchMaxEvents and BatchMaxBytes bound one batch message: the events
	// of one subject published in the same round share a JetStream message
	// (a JSON array of envelopes) of at most this many events (default
	// 256; 1 publishes one message per event) and bytes (default 256 KiB;
	// NATS refuses messages over its max_payload, 1 MiB by default).
	BatchMaxEvents int `yaml:"batch_max_events"`
	BatchMaxBytes  int `yaml:"batch_max_bytes"`
}

// Estimate is how the reservation is sized.
type Estimate struct {
	// BytesPerToken converts the request body size into prompt tokens
	// (default 3: JSON overhead makes the count high, which is the safe
	// side for a hold).
	BytesPerToken int `yaml:"bytes_per_token"`
	// ModelMaxOutputTokens is each model's output limit, by model glob
	// (the most specific pattern wins). A request's output cap is the
	// smaller of the client's and this limit; the gateway writes it into
	// the field the endpoint honours and the hold prices it, so a limit
	// above what the model really allows only makes holds larger.
	ModelMaxOutputTokens map[string]int64 `yaml:"model_max_output_tokens"`
	// DefaultMaxOutputTokens is the limit of a model no pattern matches
	// (default 4096).
	DefaultMaxOutputTokens int64 `yaml:"default_max_output_tokens"`
	// MaxChoices bounds OpenAI n and best_of and Gemini candidateCount,
	// which multiply the output a request holds (default 16; above: 400).
	MaxChoices int64 `yaml:"max_choices"`
}

// maxOutputLimit bounds configured output limits, so cap × choices ×
// price cannot overflow.
const maxOutputLimit = 10_000_000

// Secrets are read from the environment, never from YAML.
type Secrets struct {
	InternalToken string // LURUS_INTERNAL_TOKEN
	KeyPepper     string // LURUS_KEY_PEPPER
}

// LoadSecrets reads the gateway's secrets.
func LoadSecrets() (Secrets, error) {
	m, err := config.Secrets("LURUS_INTERNAL_TOKEN", "LURUS_KEY_PEPPER")
	if err != nil {
		return Secrets{}, err
	}
	return Secrets{InternalToken: m["LURUS_INTERNAL_TOKEN"], KeyPepper: m["LURUS_KEY_PEPPER"]}, nil
}

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	var c Config
	if err := config.Load(path, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// SetDefaults fills every unset value.
func (c *Config) SetDefaults() {
	config.Default(&c.Server.Addr, "127.0.0.1:18100")
	config.Default(&c.Server.MaxBodyBytes, 32<<20)
	config.Default(&c.Server.ReadTimeout, 60*time.Second)
	config.Default(&c.Server.IdleTimeout, 120*time.Second)
	config.Default(&c.Server.ShutdownTimeout, 60*time.Second)
	c.Log.Log.SetDefaults()
	config.Default(&c.Billing.Timeout, 3*time.Second)
	config.Default(&c.Billing.Refresh, 30*time.Second)
	config.Default(&c.Provider.Timeout, 3*time.Second)
	config.Default(&c.Provider.Refresh, 30*time.Second)
	c.Redis.SetDefaults()
	config.Default(&c.Redis.Prefix, "lurus:")
	config.Default(&c.Admission.ReservationTTL, 10*time.Minute)
	config.Default(&c.Runtime.GCPercent, 400)
	config.Default(&c.Admission.Senders, 2)
	config.Default(&c.Admission.MaxBatch, 64)
	config.Default(&c.Admission.LeaseFactor, 20)
	config.Default(&c.Admission.LeaseWindow, 250*time.Millisecond)
	if c.Admission.LeasePrefetch == nil {
		on := true
		c.Admission.LeasePrefetch = &on
	}
	config.Default(&c.Admission.LeaseMaxShare, 8)
	config.Default(&c.Admission.LeaseIdle, 30*time.Second)
	config.Default(&c.Admission.LeaseCheck, 5*time.Second)
	config.Default(&c.Auth.PositiveTTL, 60*time.Second)
	config.Default(&c.Auth.StaleTTL, 5*time.Minute)
	config.Default(&c.Auth.NegativeTTL, 5*time.Second)
	config.Default(&c.Auth.MaxEntries, 100000)
	c.Auth.Failures.SetDefaults()
	config.Default(&c.Upstream.ConnectTimeout, 5*time.Second)
	config.Default(&c.Upstream.FirstByteTimeout, 60*time.Second)
	config.Default(&c.Upstream.IdleTimeout, 60*time.Second)
	config.Default(&c.Upstream.TotalTimeout, 10*time.Minute)
	config.Default(&c.Upstream.MaxConnsPerHost, 1024)
	config.Default(&c.Upstream.MaxResponseBytes, 64<<20)
	config.Default(&c.Relay.MaxAttempts, 3)
	config.Default(&c.Relay.RetryRatio, 0.2)
	config.Default(&c.Relay.RetryBurst, 10)
	config.Default(&c.Relay.DrainTimeout, 30*time.Second)
	config.Default(&c.Breaker.ConsecutiveFailures, 5)
	config.Default(&c.Breaker.FailureRate, 0.5)
	config.Default(&c.Breaker.MinRequests, 20)
	config.Default(&c.Breaker.Window, 30*time.Second)
	config.Default(&c.Breaker.Cooldown, 10*time.Second)
	config.Default(&c.Log.FlushInterval, 100*time.Millisecond)
	config.Default(&c.Events.QueueSize, 8192)
	config.Default(&c.Events.OutboxDir, "var/gateway-outbox")
	config.Default(&c.Events.OutboxSync, "batch")
	config.Default(&c.Events.PublishTimeout, 5*time.Second)
	config.Default(&c.Events.Linger, 10*time.Millisecond)
	config.Default(&c.Events.MaxInFlight, 512)
	config.Default(&c.Events.BatchMaxEvents, 256)
	config.Default(&c.Events.BatchMaxBytes, 256<<10)
	config.Default(&c.Estimate.BytesPerToken, 3)
	config.Default(&c.Estimate.DefaultMaxOutputTokens, 4096)
	config.Default(&c.Estimate.MaxChoices, 16)
}

// Validate checks the values.
func (c *Config) Validate() error {
	var p config.Problems
	c.Server.Check(&p, 1024)
	c.Server.CheckProxies(&p)
	p.In("auth.failures", c.Auth.Failures.Validate())
	p.Check(c.Billing.URL != "" && c.Provider.URL != "", "billing.url and provider.url are required")
	c.NATS.Check(&p)
	g := c.Runtime.GCPercent
	p.Check(g == -1 || g >= 10 && g <= 10000, "runtime.gc_percent must be -1 or in [10, 10000]")
	p.Check(c.Admission.LeaseFactor >= 1 && c.Admission.LeaseMaxShare >= 1,
		"admission.lease_factor and admission.lease_max_share must be at least 1")
	p.Check(c.Admission.Senders >= 1 && c.Admission.MaxBatch >= 1, "admission.senders and admission.max_batch must be at least 1")
	p.Add(c.Redis.Validate())
	p.In("auth", c.Auth.KeyCache().Validate())
	p.Check(c.Relay.MaxAttempts >= 1 && c.Relay.RetryRatio >= 0 && c.Relay.RetryRatio <= 1,
		"relay.max_attempts must be ≥ 1 and relay.retry_ratio in [0,1]")
	p.Check(c.Breaker.FailureRate >= 0 && c.Breaker.FailureRate <= 1, "breaker.failure_rate must be in [0,1]")
	sync := strings.ToLower(c.Events.OutboxSync)
	p.Check(sync == "always" || sync == "batch", `events.outbox_sync must be "always" or "batch"`)
	e := c.Estimate
	p.Check(e.BytesPerToken >= 1 && e.DefaultMaxOutputTokens >= 1 && e.DefaultMaxOutputTokens <= maxOutputLimit,
		"estimate.bytes_per_token must be ≥ 1 and default_max_output_tokens in [1, %d]", maxOutputLimit)
	for pattern, v := range e.ModelMaxOutputTokens {
		p.In("estimate.model_max_output_tokens", modelglob.Validate(pattern))
		p.Check(v >= 1 && v <= maxOutputLimit, "estimate.model_max_output_tokens[%s] must be in [1, %d]", pattern, maxOutputLimit)
	}
	p.Check(e.MaxChoices >= 1 && e.MaxChoices <= 128, "estimate.max_choices must be in [1, 128]")
	return p.Err()
}

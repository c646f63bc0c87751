// Package conf is billing-service's configuration: one plain struct loaded
// from configs/config.yaml (with ${ENV} expansion) by lurus-common/config,
// with defaults and Validate. Secrets are not here; they come from the
// environment (see Secrets).
package conf

import (
	"time"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/authguard"
	"github.com/lurus-switch/lurus-switch/lurus-common/config"
	"github.com/lurus-switch/lurus-switch/lurus-common/money"
	"github.com/lurus-switch/lurus-switch/lurus-common/postgres"
	"github.com/lurus-switch/lurus-switch/lurus-common/pricing"
	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit"
	"github.com/lurus-switch/lurus-switch/lurus-common/redisx"
)

// Config is the whole service configuration.
type Config struct {
	Server   Server          `yaml:"server"`
	Log      config.Log      `yaml:"log"`
	Database postgres.Config `yaml:"database"`
	Redis    redisx.Config   `yaml:"redis"`
	NATS     config.NATS     `yaml:"nats"`
	Consumer Consumer        `yaml:"consumer"`
	SSE      SSE             `yaml:"sse"`
	Billing  Billing         `yaml:"billing"`
	Settle   Settle          `yaml:"settle"`
	Limits   Limits          `yaml:"limits"`
	Auth     Auth            `yaml:"auth"`
}

// Limits are the rate-limit defaults of user groups. A user's own value
// (> 0) wins; where it has none the group's default applies; a group not
// listed takes the entry "default"; nothing listed means unlimited. Keys
// are held under their user's limits (biz.LimitRules). A change applies
// at restart, and reaches the gateways within their key cache's life.
type Limits struct {
	Groups map[string]GroupLimits `yaml:"groups"`
}

// GroupLimits are one group's default limits (0: unlimited).
type GroupLimits struct {
	RPMLimit         int64 `yaml:"rpm_limit"`
	TPMLimit         int64 `yaml:"tpm_limit"`
	ConcurrencyLimit int64 `yaml:"concurrency_limit"`
}

// Rules are the limit rules this config sets.
func (l Limits) Rules() biz.LimitRules {
	r := biz.LimitRules{Groups: make(map[string]ratelimit.Limits, len(l.Groups))}
	for g, v := range l.Groups {
		r.Groups[g] = ratelimit.Limits{RPM: v.RPMLimit, TPM: v.TPMLimit, Concurrency: v.ConcurrencyLimit}
	}
	return r
}

func (l Limits) check(p *config.Problems) {
	for g, v := range l.Groups {
		p.Check(biz.ValidGroup(g), "limits.groups: %q is not a group name (1-64 of [A-Za-z0-9_-])", g)
		for name, n := range map[string]int64{"rpm_limit": v.RPMLimit, "tpm_limit": v.TPMLimit, "concurrency_limit": v.ConcurrencyLimit} {
			p.Add(ratelimit.CheckLimit("limits.groups."+g+"."+name, n))
		}
	}
}

// Auth guards the user-key routes (/api/v1/billing/me and /sync/...).
type Auth struct {
	// Failures caps failed authentications per client address
	// (lurus-common/authguard: 30 per minute, then 429 for 5 min; per
	// process).
	Failures authguard.Config `yaml:"failures"`
}

// Settle holds the per-request ceilings of settlement. A billing.usage
// over either is absurd (a broken or hostile upstream): it is
// dead-lettered, counted in billing_usage_rejected_total{reason} (alert
// BillingUsageRejected) and its hold released, never settled.
type Settle struct {
	// MaxTokensPerRequest bounds prompt + completion and every single token
	// count of one usage (10,000,000).
	MaxTokensPerRequest int64 `yaml:"max_tokens_per_request"`
	// MaxCostMicrosPerRequest bounds the cost of one usage (10^10 micro-USD,
	// $10,000; at most money.MaxAmount).
	MaxCostMicrosPerRequest int64 `yaml:"max_cost_micros_per_request"`
}

// Server is the listener. Its trusted proxies give the client address
// for a key's IP allow-list.
type Server struct {
	config.Server  `yaml:",inline"`
	config.Proxies `yaml:",inline"`
	// ReadHeaderTimeout bounds reading a request's headers (slowloris).
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
}

// Renamed lists the keys and variables that were renamed when every
// service's listener moved under server.addr.
func (*Config) Renamed() map[string]string {
	return map[string]string{"http": "server", "http.listen": "server.addr", "$LURUS_BILLING_LISTEN": "$LURUS_BILLING_ADDR"}
}

// Consumer tunes the billing.usage settlement consumer.
type Consumer struct {
	BatchSize     int           `yaml:"batch_size"`
	Linger        time.Duration `yaml:"linger"`
	AckWait       time.Duration `yaml:"ack_wait"`
	LagInterval   time.Duration `yaml:"lag_interval"`
	Workers       int           `yaml:"workers"`
	RetryBackoff  time.Duration `yaml:"retry_backoff"`
	MaxRetryDelay time.Duration `yaml:"max_retry_delay"`
}

// SSE tunes the user event stream route.
type SSE struct {
	KeepAlive time.Duration `yaml:"keep_alive"`
	Buffer    int           `yaml:"buffer"`
	// MaxPerUser caps a user's open streams in this process (10); the
	// next is refused with 429 RATE_LIMITED until one closes.
	MaxPerUser int `yaml:"max_per_user"`
	// MaxResumes caps resumes from Last-Event-ID running at once in this
	// process (64; each is a JetStream consumer); a resume beyond it
	// waits up to ResumeWait (1 s), then gets 503 UNAVAILABLE with
	// Retry-After.
	MaxResumes int           `yaml:"max_resumes"`
	ResumeWait time.Duration `yaml:"resume_wait"`
}

// Billing holds money rules and background job intervals.
type Billing struct {
	// DefaultPrice prices models that no price matches. Unset (the
	// default): such a usage is not billed as free but dead-lettered and
	// counted in billing_settlement_failures_total{reason="no_price"}.
	DefaultPrice *Price `yaml:"default_price"`
	// QuotaLowPercent is the share of the token quota whose first crossing
	// sends quota.low (80).
	QuotaLowPercent int64 `yaml:"quota_low_percent"`
	// OutboxSweepInterval is how often events left in the outbox by a crash
	// are published (5 s); OutboxMinAge keeps the sweeper off rows the live
	// path is about to publish (10 s).
	OutboxSweepInterval time.Duration `yaml:"outbox_sweep_interval"`
	OutboxMinAge        time.Duration `yaml:"outbox_min_age"`
	// PeriodCheckInterval is how often quota periods that rolled over are
	// reset (1 m).
	PeriodCheckInterval time.Duration `yaml:"period_check_interval"`
	// PriceRefreshInterval re-reads the price table even without a
	// price.changed notification (30 s).
	PriceRefreshInterval time.Duration `yaml:"price_refresh_interval"`
	// RebuildOnStart rewrites every user's admission mirror at serve start.
	RebuildOnStart bool `yaml:"rebuild_on_start"`
	// RebuildBatch is how many users one rebuild step reads and writes (1000).
	RebuildBatch int `yaml:"rebuild_batch"`
}

// Price is a price per million tokens in micro-USD, as written in YAML.
type Price struct {
	InputMicrosPerMTok       int64 `yaml:"input_micros_per_mtok"`
	OutputMicrosPerMTok      int64 `yaml:"output_micros_per_mtok"`
	CachedInputMicrosPerMTok int64 `yaml:"cached_input_micros_per_mtok"`
	CacheWriteMicrosPerMTok  int64 `yaml:"cache_write_micros_per_mtok"`
}

// Pricing returns p as the default entry of a price table (nil when unset).
func (b Billing) Pricing() *pricing.Price {
	if b.DefaultPrice == nil {
		return nil
	}
	p := b.DefaultPrice
	return &pricing.Price{ID: "default", ModelPattern: "*", InputMicrosPerMTok: p.InputMicrosPerMTok,
		OutputMicrosPerMTok: p.OutputMicrosPerMTok, CachedInputMicrosPerMTok: p.CachedInputMicrosPerMTok,
		CacheWriteMicrosPerMTok: p.CacheWriteMicrosPerMTok}
}

// Rules are the money rules this config sets.
func (c *Config) Rules() biz.Rules {
	return biz.Rules{QuotaLowPercent: c.Billing.QuotaLowPercent, MaxTokensPerRequest: c.Settle.MaxTokensPerRequest,
		MaxCostMicrosPerRequest: c.Settle.MaxCostMicrosPerRequest}
}

// SetDefaults fills the defaults; values in the file override them.
func (c *Config) SetDefaults() {
	c.Server = Server{Server: config.Server{Addr: "127.0.0.1:18103", MaxBodyBytes: 1 << 20, ShutdownTimeout: 20 * time.Second},
		ReadHeaderTimeout: 10 * time.Second}
	c.Log.SetDefaults()
	c.Database.SetDefaults()
	c.Redis.SetDefaults()
	c.Redis.Prefix = "lurus:"
	c.NATS.SetDefaults()
	c.Consumer = Consumer{BatchSize: 500, Workers: 1, Linger: 5 * time.Millisecond, AckWait: 30 * time.Second,
		LagInterval: 5 * time.Second, RetryBackoff: time.Second, MaxRetryDelay: 30 * time.Second}
	c.SSE = SSE{KeepAlive: 20 * time.Second, Buffer: 256, MaxPerUser: 10, MaxResumes: 64, ResumeWait: time.Second}
	c.Auth.Failures.SetDefaults()
	c.Settle = Settle{MaxTokensPerRequest: biz.DefaultMaxTokensPerRequest, MaxCostMicrosPerRequest: biz.DefaultMaxCostMicrosPerRequest}
	c.Billing = Billing{QuotaLowPercent: 80, OutboxSweepInterval: 5 * time.Second, OutboxMinAge: 10 * time.Second,
		PeriodCheckInterval: time.Minute, PriceRefreshInterval: 30 * time.Second, RebuildOnStart: true, RebuildBatch: 1000}
}

// Validate checks the loaded config.
func (c *Config) Validate() error {
	var p config.Problems
	c.Server.Check(&p, 1)
	c.Server.CheckProxies(&p)
	p.Add(c.Database.Validate())
	p.Add(c.Redis.Validate())
	c.NATS.Check(&p)
	p.Check(c.Consumer.BatchSize >= 1 && c.Consumer.BatchSize <= 5000, "consumer.batch_size %d not in 1..5000", c.Consumer.BatchSize)
	p.Check(c.Consumer.Workers >= 1 && c.Consumer.Workers <= 16, "consumer.workers %d not in 1..16", c.Consumer.Workers)
	p.Check(c.SSE.KeepAlive > 0 && c.SSE.Buffer >= 1, "sse.keep_alive and sse.buffer must be > 0")
	p.Check(c.SSE.MaxPerUser >= 1 && c.SSE.MaxResumes >= 1 && c.SSE.ResumeWait > 0,
		"sse.max_per_user, sse.max_resumes and sse.resume_wait must be > 0")
	p.In("auth.failures", c.Auth.Failures.Validate())
	pct := c.Billing.QuotaLowPercent
	p.Check(pct >= 1 && pct <= 100, "billing.quota_low_percent %d not in 1..100", pct)
	if price := c.Billing.Pricing(); price != nil {
		p.In("billing.default_price", price.CheckAmounts())
	}
	n := c.Settle.MaxTokensPerRequest
	p.Check(n >= 1 && n <= money.MaxTokens, "settle.max_tokens_per_request %d not in 1..%d", n, money.MaxTokens)
	n = c.Settle.MaxCostMicrosPerRequest
	p.Check(n >= 1 && n <= money.MaxAmount, "settle.max_cost_micros_per_request %d not in 1..%d", n, money.MaxAmount)
	p.Check(c.Billing.RebuildBatch >= 1, "billing.rebuild_batch must be > 0")
	c.Limits.check(&p)
	return p.Err()
}

// Load reads and validates the config file at path.
func Load(path string) (*Config, error) {
	var c Config
	if err := config.Load(path, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// Secrets are the values billing-service reads from the environment.
type Secrets struct {
	AdminToken    string // LURUS_ADMIN_TOKEN: admin routes
	InternalToken string // LURUS_INTERNAL_TOKEN: /internal routes
	KeyPepper     string // LURUS_KEY_PEPPER: keyed hash of API keys
}

// LoadSecrets reads the secrets (refusing dev-only values outside dev).
func LoadSecrets() (Secrets, error) {
	m, err := config.Secrets("LURUS_ADMIN_TOKEN", "LURUS_INTERNAL_TOKEN", "LURUS_KEY_PEPPER")
	if err != nil {
		return Secrets{}, err
	}
	return Secrets{AdminToken: m["LURUS_ADMIN_TOKEN"], InternalToken: m["LURUS_INTERNAL_TOKEN"], KeyPepper: m["LURUS_KEY_PEPPER"]}, nil
}

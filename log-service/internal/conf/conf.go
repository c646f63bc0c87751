// Package conf is log-service's configuration: one plain struct loaded from
// configs/config.yaml (with ${ENV} expansion) by lurus-common/config, with
// defaults and Validate. Secrets are not here; they come from the
// environment (see Secrets).
package conf

import (
	"os"
	"regexp"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/authguard"
	"github.com/lurus-switch/lurus-switch/lurus-common/config"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/keyauth"
)

// Config is the whole service configuration.
type Config struct {
	Server     Server      `yaml:"server"`
	Log        config.Log  `yaml:"log"`
	ClickHouse ClickHouse  `yaml:"clickhouse"`
	NATS       config.NATS `yaml:"nats"`
	Consumer   Consumer    `yaml:"consumer"`
	Query      Query       `yaml:"query"`
	Billing    Billing     `yaml:"billing"`
	Auth       Auth        `yaml:"auth"`
}

// Auth guards the query routes.
type Auth struct {
	// Failures caps failed authentications (no, wrong or revoked key or
	// admin token) per client address (lurus-common/authguard: 30 per
	// minute, then 429 for 5 min; per process).
	Failures authguard.Config `yaml:"failures"`
}

// Server is the listener (max_body_bytes bounds POST
// /api/v1/logs/batch). Its trusted proxies give the client address for
// keys' IP allow-lists.
type Server struct {
	config.Server  `yaml:",inline"`
	config.Proxies `yaml:",inline"`
	// Timeout bounds one request, ClickHouse query included.
	Timeout time.Duration `yaml:"timeout"`
}

// Renamed lists the keys and variables that were renamed when every
// service's listener moved under server.addr.
func (*Config) Renamed() map[string]string {
	return map[string]string{"http": "server", "http.listen": "server.addr", "$LURUS_LOG_LISTEN": "$LURUS_LOG_ADDR"}
}

// ClickHouse is the log store.
type ClickHouse struct {
	Addr string `yaml:"addr"`
	// Database is where clickhouse-init.sql is applied and queried
	// (lurus_logs); tests use their own.
	Database     string        `yaml:"database"`
	Username     string        `yaml:"username"`
	DialTimeout  time.Duration `yaml:"dial_timeout"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	MaxOpenConns int           `yaml:"max_open_conns"`
	// Compress enables LZ4 on the native protocol.
	Compress bool `yaml:"compress"`
	// RetentionDays is how long request_log rows are kept (180);
	// HourlyRetentionDays the hourly rollup (400); DailyRetentionDays the
	// daily rollup (0: forever). Applied by `migrate` with ALTER TABLE …
	// MODIFY TTL only on servers that support it (19.6 and later).
	RetentionDays       int `yaml:"retention_days"`
	HourlyRetentionDays int `yaml:"hourly_retention_days"`
	DailyRetentionDays  int `yaml:"daily_retention_days"`
}

// Consumer tunes the log.write consumer. A batch is flushed to ClickHouse
// when it holds BatchSize rows or when no further message arrived for
// Linger; each of Workers pull loops flushes its own batches.
type Consumer struct {
	Enabled   bool          `yaml:"enabled"`
	BatchSize int           `yaml:"batch_size"`
	Linger    time.Duration `yaml:"linger"`
	Workers   int           `yaml:"workers"`
	// AckWait is JetStream's redelivery timeout. A batch in flight is kept
	// alive with progress acks, and FlushTimeout (< AckWait) bounds one
	// insert, so a message is never redelivered while its batch runs.
	AckWait      time.Duration `yaml:"ack_wait"`
	FlushTimeout time.Duration `yaml:"flush_timeout"`
	// MaxAckPending bounds unacknowledged messages (memory while
	// ClickHouse is down); 0 means 4 × BatchSize × Workers.
	MaxAckPending int `yaml:"max_ack_pending"`
	// Ack is how committed messages are acknowledged: "async" (default)
	// sends the ack without waiting for the server's reply, "sync" waits
	// (AckSync). Async is safe here because a redelivered message is
	// dropped as a duplicate, and it is what lets ingestion keep up (see
	// docs/log-service.md, Benchmark).
	Ack string `yaml:"ack"`
	// AckConcurrency is how many acknowledgements (AckSync round trips)
	// run at once after a flush with ack: sync (256).
	AckConcurrency int `yaml:"ack_concurrency"`
	// Backoff is the redelivery delay after a failed flush, by delivery
	// count (1s 2s 5s 10s 30s).
	Backoff     []time.Duration `yaml:"backoff"`
	LagInterval time.Duration   `yaml:"lag_interval"`
}

// Query bounds the query API.
type Query struct {
	// MaxRange is the longest from–to span a query may ask for (93 days).
	MaxRange time.Duration `yaml:"max_range"`
	// DefaultRange is used when from is absent: stats look back this far
	// (24 h); GET /api/v1/logs looks back MaxRange.
	DefaultRange time.Duration `yaml:"default_range"`
	DefaultLimit int           `yaml:"default_limit"`
	// MaxBatchRecords caps one POST /api/v1/logs/batch (10000).
	MaxBatchRecords int `yaml:"max_batch_records"`
}

// Billing is where users' API keys are verified.
type Billing struct {
	URL     string        `yaml:"url"`
	Timeout time.Duration `yaml:"timeout"`
	// KeyCacheTTL keeps a verified key (30 s, at most 60 s);
	// NegativeCacheTTL a refused one (5 s, at most 5 s). key.changed
	// evicts at once (lurus-common/keyauth).
	KeyCacheTTL      time.Duration `yaml:"key_cache_ttl"`
	NegativeCacheTTL time.Duration `yaml:"negative_cache_ttl"`
	// MaxRefusals bounds the refused keys held, apart from the verified
	// ones, so a flood of random keys never evicts them (10000).
	MaxRefusals int `yaml:"max_refusals"`
}

// KeyCache is the keyauth cache configuration these settings describe (no
// stale serving: a query can wait for billing).
func (b Billing) KeyCache() keyauth.Config {
	return keyauth.Config{PositiveTTL: b.KeyCacheTTL, NegativeTTL: b.NegativeCacheTTL, VerifyTimeout: b.Timeout,
		MaxNegative: b.MaxRefusals}
}

// SetDefaults fills the defaults; values in the file override them.
func (c *Config) SetDefaults() {
	c.Server = Server{Server: config.Server{Addr: "127.0.0.1:18102", MaxBodyBytes: 16 << 20, ShutdownTimeout: 20 * time.Second},
		Timeout: 30 * time.Second}
	c.Log.SetDefaults()
	c.ClickHouse = ClickHouse{Addr: "127.0.0.1:9000", Database: "lurus_logs", Username: "default",
		DialTimeout: 2 * time.Second, ReadTimeout: 60 * time.Second, MaxOpenConns: 8,
		RetentionDays: 180, HourlyRetentionDays: 400}
	c.NATS.SetDefaults()
	c.Consumer = Consumer{Enabled: true, BatchSize: 10000, Linger: 20 * time.Millisecond, Workers: 2,
		AckWait: 30 * time.Second, FlushTimeout: 20 * time.Second, LagInterval: 5 * time.Second, Ack: "async", AckConcurrency: 256,
		Backoff: []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second}}
	c.Query = Query{MaxRange: 93 * 24 * time.Hour, DefaultRange: 24 * time.Hour, DefaultLimit: 100, MaxBatchRecords: 10000}
	c.Billing = Billing{URL: "http://127.0.0.1:18103", Timeout: 3 * time.Second, KeyCacheTTL: 30 * time.Second, NegativeCacheTTL: 5 * time.Second,
		MaxRefusals: 10000}
	c.Auth.Failures.SetDefaults()
}

// identifier is what a ClickHouse database name may be here: it is spliced
// into DDL, so only plain identifiers are accepted.
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// Validate checks the loaded config.
func (c *Config) Validate() error {
	var p config.Problems
	add := p.Addf
	c.Server.Check(&p, 1)
	p.Check(c.Server.Timeout > 0, "server.timeout must be > 0")
	c.Server.CheckProxies(&p)
	ch := c.ClickHouse
	if ch.Addr == "" {
		add("clickhouse.addr is required")
	}
	if !identifier.MatchString(ch.Database) {
		add("clickhouse.database %q is not a plain identifier", ch.Database)
	}
	if ch.DialTimeout <= 0 || ch.ReadTimeout <= 0 || ch.MaxOpenConns < 1 {
		add("clickhouse.dial_timeout, read_timeout and max_open_conns must be > 0")
	}
	if ch.RetentionDays < 0 || ch.HourlyRetentionDays < 0 || ch.DailyRetentionDays < 0 {
		add("clickhouse retention days must be >= 0 (0: keep forever)")
	}
	c.NATS.Check(&p)
	cs := c.Consumer
	if cs.BatchSize < 1 || cs.BatchSize > 100000 {
		add("consumer.batch_size %d not in 1..100000", cs.BatchSize)
	}
	if cs.Workers < 1 || cs.Workers > 64 {
		add("consumer.workers %d not in 1..64", cs.Workers)
	}
	if cs.Linger <= 0 || cs.LagInterval <= 0 {
		add("consumer.linger and consumer.lag_interval must be > 0")
	}
	if cs.FlushTimeout <= 0 || cs.AckWait <= cs.FlushTimeout {
		add("consumer.ack_wait (%s) must exceed consumer.flush_timeout (%s) > 0", cs.AckWait, cs.FlushTimeout)
	}
	if cs.MaxAckPending < 0 {
		add("consumer.max_ack_pending must be >= 0")
	}
	if cs.Ack != "async" && cs.Ack != "sync" {
		add("consumer.ack %q must be async or sync", cs.Ack)
	}
	if cs.AckConcurrency < 1 || cs.AckConcurrency > 4096 {
		add("consumer.ack_concurrency %d not in 1..4096", cs.AckConcurrency)
	}
	for _, d := range cs.Backoff {
		if d <= 0 {
			add("consumer.backoff entries must be > 0")
			break
		}
	}
	q := c.Query
	if q.MaxRange <= 0 || q.DefaultRange <= 0 || q.DefaultRange > q.MaxRange {
		add("query.default_range must be in (0, query.max_range]")
	}
	if q.DefaultLimit < 1 || q.DefaultLimit > MaxLimit {
		add("query.default_limit %d not in 1..%d", q.DefaultLimit, MaxLimit)
	}
	if q.MaxBatchRecords < 1 {
		add("query.max_batch_records must be > 0")
	}
	if c.Billing.URL == "" || c.Billing.Timeout <= 0 {
		add("billing.url and billing.timeout are required")
	}
	p.In("billing", c.Billing.KeyCache().Validate())
	if c.Billing.MaxRefusals < 1 {
		add("billing.max_refusals must be > 0")
	}
	p.In("auth.failures", c.Auth.Failures.Validate())
	return p.Err()
}

// MaxLimit is the largest page a list or top-N query returns.
const MaxLimit = 1000

// AckMode returns consumer.ack as the runner's mode.
func (c Consumer) AckMode() natsbus.AckMode {
	if c.Ack == "sync" {
		return natsbus.AckSync
	}
	return natsbus.AckAsync
}

// EffectiveMaxAckPending returns consumer.max_ack_pending with its
// default applied.
func (c Consumer) EffectiveMaxAckPending() int {
	if c.MaxAckPending > 0 {
		return c.MaxAckPending
	}
	return 4 * c.BatchSize * c.Workers
}

// Secrets are the secrets log-service reads from the environment.
type Secrets struct {
	AdminToken    string // LURUS_ADMIN_TOKEN: every query route
	InternalToken string // LURUS_INTERNAL_TOKEN: POST /api/v1/logs/batch and calls to billing
	KeyPepper     string // LURUS_KEY_PEPPER: the hash users' keys are verified and cached by
	// ClickHousePassword is LURUS_CLICKHOUSE_PASSWORD, optional (empty:
	// the server's passwordless default user).
	ClickHousePassword string
}

// LoadSecrets reads the secrets; a development value is refused unless
// LURUS_ENV=dev.
func LoadSecrets() (Secrets, error) {
	m, err := config.Secrets("LURUS_ADMIN_TOKEN", "LURUS_INTERNAL_TOKEN", "LURUS_KEY_PEPPER")
	if err != nil {
		return Secrets{}, err
	}
	pw, err := ClickHousePassword()
	if err != nil {
		return Secrets{}, err
	}
	return Secrets{AdminToken: m["LURUS_ADMIN_TOKEN"], InternalToken: m["LURUS_INTERNAL_TOKEN"], KeyPepper: m["LURUS_KEY_PEPPER"],
		ClickHousePassword: pw}, nil
}

// ClickHousePassword reads the optional LURUS_CLICKHOUSE_PASSWORD (all that
// `migrate` needs).
func ClickHousePassword() (string, error) {
	if os.Getenv("LURUS_CLICKHOUSE_PASSWORD") == "" {
		return "", nil
	}
	return config.Secret("LURUS_CLICKHOUSE_PASSWORD")
}

// Load reads and validates the configuration file at path.
func Load(path string) (Config, error) {
	var c Config
	err := config.Load(path, &c)
	return c, err
}

-- billing-service schema: users, API keys, prices, usage, ledger, outbox.
-- Money is bigint micro-USD everywhere; token counts are bigint.

CREATE TABLE users (
    id                            text PRIMARY KEY,
    name                          text NOT NULL,
    email                         text NOT NULL DEFAULT '',
    status                        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    user_group                    text NOT NULL DEFAULT 'default',
    balance_micros                bigint NOT NULL DEFAULT 0,
    credit_limit_micros           bigint NOT NULL DEFAULT 0 CHECK (credit_limit_micros >= 0),
    quota_limit_tokens            bigint NOT NULL DEFAULT 0 CHECK (quota_limit_tokens >= 0),
    quota_used_tokens             bigint NOT NULL DEFAULT 0 CHECK (quota_used_tokens >= 0),
    period_start                  timestamptz NOT NULL,
    low_balance_threshold_micros  bigint NOT NULL DEFAULT 0 CHECK (low_balance_threshold_micros >= 0),
    -- bit set of threshold crossings already announced in this period (biz.Alert*)
    alert_flags                   integer NOT NULL DEFAULT 0,
    -- bumped by every change the admission mirror holds; guards Redis writes
    version                       bigint NOT NULL DEFAULT 1,
    -- id of the newest user event written to the outbox for this user
    last_event_id                 text NOT NULL DEFAULT '',
    created_at                    timestamptz NOT NULL DEFAULT now(),
    updated_at                    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email <> '';
-- the monthly reset job finds users whose period rolled over
CREATE INDEX users_period_idx ON users (period_start);

CREATE TABLE api_keys (
    id                  text PRIMARY KEY,
    user_id             text NOT NULL REFERENCES users (id),
    name                text NOT NULL DEFAULT '',
    key_hash            text NOT NULL UNIQUE,
    prefix              text NOT NULL,
    status              text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    models              text[] NOT NULL DEFAULT '{}',
    allowed_ips         text[] NOT NULL DEFAULT '{}',
    expires_at          timestamptz,
    spend_limit_micros  bigint NOT NULL DEFAULT 0 CHECK (spend_limit_micros >= 0),
    spent_micros        bigint NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    revoked_at          timestamptz
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id, created_at);

CREATE TABLE prices (
    id                            text PRIMARY KEY,
    model_pattern                 text NOT NULL UNIQUE,
    input_micros_per_mtok         bigint NOT NULL CHECK (input_micros_per_mtok >= 0),
    output_micros_per_mtok        bigint NOT NULL CHECK (output_micros_per_mtok >= 0),
    cached_input_micros_per_mtok  bigint NOT NULL CHECK (cached_input_micros_per_mtok >= 0),
    cache_write_micros_per_mtok   bigint NOT NULL CHECK (cache_write_micros_per_mtok >= 0),
    created_at                    timestamptz NOT NULL DEFAULT now(),
    updated_at                    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE group_multipliers (
    group_name      text PRIMARY KEY,
    multiplier_bps  bigint NOT NULL CHECK (multiplier_bps >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- One row: the version of the price table (prices + multipliers), the ETag
-- of GET /internal/v1/prices. Bumped in the transaction of every change.
CREATE TABLE price_version (
    id       boolean PRIMARY KEY DEFAULT true CHECK (id),
    version  bigint NOT NULL
);
INSERT INTO price_version (id, version) VALUES (true, 1);

CREATE TABLE usage_records (
    request_id          text PRIMARY KEY,
    seq                 bigserial NOT NULL UNIQUE,
    user_id             text NOT NULL,
    key_id              text NOT NULL DEFAULT '',
    model               text NOT NULL DEFAULT '',
    upstream_model      text NOT NULL DEFAULT '',
    provider_id         text NOT NULL DEFAULT '',
    api_format          text NOT NULL DEFAULT '',
    endpoint            text NOT NULL DEFAULT '',
    stream              boolean NOT NULL DEFAULT false,
    prompt_tokens       bigint NOT NULL DEFAULT 0,
    completion_tokens   bigint NOT NULL DEFAULT 0,
    cached_tokens       bigint NOT NULL DEFAULT 0,
    cache_write_tokens  bigint NOT NULL DEFAULT 0,
    reasoning_tokens    bigint NOT NULL DEFAULT 0,
    usage_source        text NOT NULL DEFAULT '',
    status              text NOT NULL DEFAULT '',
    reservation_id      text NOT NULL DEFAULT '',
    cost_micros         bigint NOT NULL DEFAULT 0 CHECK (cost_micros >= 0),
    started_at          timestamptz NOT NULL,
    finished_at         timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_records_user_time_idx ON usage_records (user_id, finished_at);

CREATE TABLE ledger_entries (
    id                    text PRIMARY KEY,
    seq                   bigserial NOT NULL,
    user_id               text NOT NULL REFERENCES users (id),
    kind                  text NOT NULL CHECK (kind IN ('topup', 'adjust', 'usage', 'refund')),
    amount_micros         bigint NOT NULL CHECK (amount_micros <> 0),
    balance_after_micros  bigint NOT NULL,
    request_id            text,
    note                  text NOT NULL DEFAULT '',
    created_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_entries_user_idx ON ledger_entries (user_id, seq);
-- A request is debited at most once, whatever happens above this table.
CREATE UNIQUE INDEX ledger_entries_usage_request_key ON ledger_entries (request_id) WHERE kind = 'usage';

-- Idempotency-Key of top-ups and adjustments: the first result is replayed.
CREATE TABLE idempotency_keys (
    idem_key      text PRIMARY KEY,
    request_hash  text NOT NULL,
    status_code   integer NOT NULL,
    response      bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Transactional outbox of user events: one row per transaction holding
-- its events (a JSON array of envelopes, in order), written with the change
-- that caused them, published to JetStream after commit (Nats-Msg-Id = event
-- id), then deleted. Near empty in steady state, so it carries only its key.
CREATE TABLE outbox (
    id          text PRIMARY KEY,
    seq         bigserial NOT NULL,
    events      bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

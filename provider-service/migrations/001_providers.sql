-- Upstream providers and their API keys. Keys are stored only encrypted
-- (AES-256-GCM): secret_key_id names the LURUS_SECRET_KEY that sealed them.

CREATE TABLE providers (
    id                    text PRIMARY KEY,
    name                  text NOT NULL,
    type                  text NOT NULL,
    base_url              text NOT NULL,
    api_version           text NOT NULL DEFAULT '',
    models                text[] NOT NULL,
    model_mapping         jsonb NOT NULL DEFAULT '{}',
    priority              integer NOT NULL DEFAULT 0,
    weight                integer NOT NULL DEFAULT 1 CHECK (weight >= 0),
    enabled               boolean NOT NULL DEFAULT true,
    connect_timeout_ms    bigint NOT NULL DEFAULT 0 CHECK (connect_timeout_ms >= 0),
    first_byte_timeout_ms bigint NOT NULL DEFAULT 0 CHECK (first_byte_timeout_ms >= 0),
    idle_timeout_ms       bigint NOT NULL DEFAULT 0 CHECK (idle_timeout_ms >= 0),
    total_timeout_ms      bigint NOT NULL DEFAULT 0 CHECK (total_timeout_ms >= 0),
    headers               jsonb NOT NULL DEFAULT '{}',
    allow_private_network boolean NOT NULL DEFAULT false,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- Names are unique regardless of case.
CREATE UNIQUE INDEX providers_name_key ON providers (lower(name));
CREATE INDEX providers_type_idx ON providers (type, id);

CREATE TABLE provider_keys (
    id            text PRIMARY KEY,
    provider_id   text NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
    secret_key_id text NOT NULL,
    nonce         bytea NOT NULL,
    ciphertext    bytea NOT NULL,
    masked        text NOT NULL,
    enabled       boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX provider_keys_provider_idx ON provider_keys (provider_id, id);
CREATE INDEX provider_keys_secret_key_idx ON provider_keys (secret_key_id);

-- The snapshot version: one row, bumped in the same transaction as every
-- change, so a snapshot's version says exactly which changes it contains.
CREATE TABLE snapshot_version (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version   bigint NOT NULL
);

INSERT INTO snapshot_version (singleton, version) VALUES (true, 1);

-- ClickHouse schema of log-service (DESIGN.md §6): request logs and their
-- hourly and daily rollups.
--
-- This file is the only place the DDL lives. The canonical copy is
-- log-service/clickhouse-init.sql (embedded in the binary and applied by
-- `log-service migrate`); clickhouse-init.sql at the repository root is a
-- byte-for-byte copy that a test keeps equal (edit this one, then run
-- `cd log-service && go test . -update`).
--
-- By hand:  clickhouse-client --multiquery < clickhouse-init.sql
-- `log-service migrate` applies the same statements to the database named
-- by clickhouse.database (lurus_logs by default): it runs the CREATE
-- DATABASE below with that name and skips USE. No other statement names a
-- database.
--
-- Portability: runs unchanged on Debian's ClickHouse 18.16 and on current
-- releases. No DateTime64; no LowCardinality (experimental on 18.16, behind
-- allow_experimental_low_cardinality_type); no TTL clause: `log-service
-- migrate` sets retention with ALTER TABLE ... MODIFY TTL on servers that
-- support it (19.6 and later), see docs/log-service.md. Every statement is
-- idempotent, so migrate can run on every deploy.
--
-- Adding a column: declare it in its CREATE TABLE below, where it belongs.
-- CREATE TABLE IF NOT EXISTS leaves an existing table alone, so `log-service
-- migrate` then adds each declared column the table lacks with ALTER TABLE
-- ... ADD COLUMN <definition as written here> AFTER <the column before it>
-- (18.16 has no ADD COLUMN IF NOT EXISTS; migrate checks system.columns).
-- Give such a column a DEFAULT: rows stored before it read that value. By
-- hand on an existing database, run that ALTER yourself. A new rollup
-- column also needs its materialized view dropped and created again, which
-- migrate does not do.
--
-- Times are UTC. created_at has second precision; durations are in
-- latency_ms / ttfb_ms.

CREATE DATABASE IF NOT EXISTS lurus_logs;

USE lurus_logs;

-- One row per request (every field of the log.write event). api_format is
-- the client's API format, upstream_format the family of the provider that
-- served the call (they differ when the gateway translated; upstream_format
-- is '' when no provider was tried, and in rows stored before the column
-- was added). Ordered for the queries: a time range first (hour), then the
-- user, then newest-first keyset pagination on (created_at, request_id).
CREATE TABLE IF NOT EXISTS request_log
(
    created_at          DateTime('UTC'),
    request_id          String,
    trace_id            String,
    user_id             String,
    key_id              String,
    model               String,
    upstream_model      String,
    provider_id         String,
    api_format          String,
    upstream_format     String DEFAULT '',
    endpoint            String,
    stream              UInt8,
    status_code         UInt16,
    error_reason        String,
    attempts            UInt16,
    latency_ms          UInt32,
    ttfb_ms             UInt32,
    prompt_tokens       UInt64,
    completion_tokens   UInt64,
    cached_tokens       UInt64,
    cache_write_tokens  UInt64,
    reasoning_tokens    UInt64,
    usage_source        String,
    client_ip           String,
    user_agent          String,
    inserted_at         DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(created_at)
ORDER BY (toStartOfHour(created_at), user_id, created_at, request_id);

-- Rollups per hour and per day, by user, model and provider. Columns are
-- sums, so a query must aggregate with sum() (SummingMergeTree folds rows
-- of one key only when parts merge). errors counts status >= 400,
-- server_errors status >= 500; ttfb_count counts rows that sent a first
-- byte (ttfb_ms > 0), the divisor of ttfb_ms_sum.
CREATE TABLE IF NOT EXISTS request_log_hourly
(
    hour                DateTime('UTC'),
    user_id             String,
    model               String,
    provider_id         String,
    requests            UInt64,
    errors              UInt64,
    server_errors       UInt64,
    prompt_tokens       UInt64,
    completion_tokens   UInt64,
    cached_tokens       UInt64,
    cache_write_tokens  UInt64,
    reasoning_tokens    UInt64,
    latency_ms_sum      UInt64,
    ttfb_ms_sum         UInt64,
    ttfb_count          UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, user_id, model, provider_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS request_log_hourly_mv TO request_log_hourly AS
SELECT
    toStartOfHour(created_at)       AS hour,
    user_id,
    model,
    provider_id,
    count()                         AS requests,
    countIf(status_code >= 400)     AS errors,
    countIf(status_code >= 500)     AS server_errors,
    sum(prompt_tokens)              AS prompt_tokens,
    sum(completion_tokens)          AS completion_tokens,
    sum(cached_tokens)              AS cached_tokens,
    sum(cache_write_tokens)         AS cache_write_tokens,
    sum(reasoning_tokens)           AS reasoning_tokens,
    sum(toUInt64(latency_ms))       AS latency_ms_sum,
    sum(toUInt64(ttfb_ms))          AS ttfb_ms_sum,
    countIf(ttfb_ms > 0)            AS ttfb_count
FROM request_log
GROUP BY hour, user_id, model, provider_id;

CREATE TABLE IF NOT EXISTS request_log_daily
(
    day                 Date,
    user_id             String,
    model               String,
    provider_id         String,
    requests            UInt64,
    errors              UInt64,
    server_errors       UInt64,
    prompt_tokens       UInt64,
    completion_tokens   UInt64,
    cached_tokens       UInt64,
    cache_write_tokens  UInt64,
    reasoning_tokens    UInt64,
    latency_ms_sum      UInt64,
    ttfb_ms_sum         UInt64,
    ttfb_count          UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, user_id, model, provider_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS request_log_daily_mv TO request_log_daily AS
SELECT
    toDate(created_at, 'UTC')       AS day,
    user_id,
    model,
    provider_id,
    count()                         AS requests,
    countIf(status_code >= 400)     AS errors,
    countIf(status_code >= 500)     AS server_errors,
    sum(prompt_tokens)              AS prompt_tokens,
    sum(completion_tokens)          AS completion_tokens,
    sum(cached_tokens)              AS cached_tokens,
    sum(cache_write_tokens)         AS cache_write_tokens,
    sum(reasoning_tokens)           AS reasoning_tokens,
    sum(toUInt64(latency_ms))       AS latency_ms_sum,
    sum(toUInt64(ttfb_ms))          AS ttfb_ms_sum,
    countIf(ttfb_ms > 0)            AS ttfb_count
FROM request_log
GROUP BY day, user_id, model, provider_id;

-- Container logs collected by Vector (deploy/vector/vector.toml), kept apart
-- from log-service's request logs (lurus_logs). Applied by the Compose
-- ClickHouse container on first start (docker-entrypoint-initdb.d).
-- Retention: ALTER TABLE lurus_ops.service_log MODIFY TTL ... by hand.
CREATE DATABASE IF NOT EXISTS lurus_ops;

CREATE TABLE IF NOT EXISTS lurus_ops.service_log
(
    timestamp  DateTime,
    service    String,
    container  String,
    stream     String,
    level      String,
    msg        String,
    request_id String,
    trace_id   String,
    raw        String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (service, timestamp);

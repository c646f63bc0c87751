-- Rate limits of users and API keys (issue 12): requests per minute,
-- tokens (input + output) per minute and requests in flight. 0 means no
-- limit of the user's or key's own: a user then takes its group's default
-- from billing config (limits.groups), and a key is held by its user's
-- limit alone. The API bounds each value to 0..ratelimit.MaxLimit.

ALTER TABLE users
    ADD COLUMN rpm_limit         bigint NOT NULL DEFAULT 0 CHECK (rpm_limit >= 0),
    ADD COLUMN tpm_limit         bigint NOT NULL DEFAULT 0 CHECK (tpm_limit >= 0),
    ADD COLUMN concurrency_limit bigint NOT NULL DEFAULT 0 CHECK (concurrency_limit >= 0);

ALTER TABLE api_keys
    ADD COLUMN rpm_limit         bigint NOT NULL DEFAULT 0 CHECK (rpm_limit >= 0),
    ADD COLUMN tpm_limit         bigint NOT NULL DEFAULT 0 CHECK (tpm_limit >= 0),
    ADD COLUMN concurrency_limit bigint NOT NULL DEFAULT 0 CHECK (concurrency_limit >= 0);

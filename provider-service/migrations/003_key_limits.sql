-- Limits of an upstream key (issue 12): requests and tokens (input +
-- output) per minute the upstream account's tier allows. 0 means none;
-- the gateway keeps the key under them and skips it while it is saturated.

ALTER TABLE provider_keys
    ADD COLUMN rpm_limit bigint NOT NULL DEFAULT 0 CHECK (rpm_limit >= 0),
    ADD COLUMN tpm_limit bigint NOT NULL DEFAULT 0 CHECK (tpm_limit >= 0);

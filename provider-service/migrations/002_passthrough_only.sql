-- A provider can opt out of protocol translation: with passthrough_only it
-- serves only clients that speak its own API family. Existing providers
-- keep being reachable by translation (the default).

ALTER TABLE providers ADD COLUMN passthrough_only boolean NOT NULL DEFAULT false;

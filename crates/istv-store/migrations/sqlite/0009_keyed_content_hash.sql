-- Content hashes become keyed (HMAC-SHA256 under the deployment's secret,
-- truncated to 64 bits). A record stored before keeps its unkeyed FNV-1a
-- hash, marked here as kind 0 (every existing row takes the default); a
-- record written from now on is kind 1. A re-send of a kind-0 record is
-- compared under FNV-1a, and writing it again makes it kind 1.
ALTER TABLE records ADD COLUMN hash_kind INTEGER NOT NULL DEFAULT 0;

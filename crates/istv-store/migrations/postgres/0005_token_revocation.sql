-- Revoking a site revokes the tokens it has, one by one, so that a token
-- issued after the revoke (rotation) authenticates while the old ones
-- never do again.
ALTER TABLE site_tokens ADD COLUMN revoked BIGINT NOT NULL DEFAULT 0;
UPDATE site_tokens SET revoked = 1
    WHERE site_code IN (SELECT code FROM sites WHERE revoked <> 0);

SELECT s.code FROM site_tokens t JOIN sites s ON s.code = t.site_code
WHERE t.token_hash = $1 AND t.revoked = 0 AND s.revoked = 0

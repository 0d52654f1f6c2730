SELECT record_id, content_hash, hash_kind = 1, stamp = $1 FROM records
WHERE site_code = $2 AND record_id = ANY($3)

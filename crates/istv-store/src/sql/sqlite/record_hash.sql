SELECT content_hash, upload_id = ?1 FROM records
WHERE site_code = ?2 AND record_id = ?3

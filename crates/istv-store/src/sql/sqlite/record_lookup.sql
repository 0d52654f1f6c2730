SELECT r.rid, r.content_hash, r.hash_kind, r.stamp = ?1 FROM records AS r
WHERE r.rid IN (
    SELECT rid FROM record_ids WHERE fp = ?2
    UNION ALL
    SELECT rid FROM record_ids_recent WHERE fp = ?2
)
AND r.site_code = ?3 AND r.record_id = ?4

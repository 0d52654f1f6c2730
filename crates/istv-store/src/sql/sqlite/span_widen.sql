UPDATE record_spans SET last_rid = ?1,
    first_day = MIN(first_day, ?2), last_day = MAX(last_day, ?3)
WHERE first_rid = (SELECT MAX(first_rid) FROM record_spans)
    AND last_rid = ?4 - 1 AND last_rid - first_rid + 1 < ?5

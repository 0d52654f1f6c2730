UPDATE cube_spans SET last_seq = ?1,
    first_day = MIN(first_day, ?2), last_day = MAX(last_day, ?3)
WHERE first_seq = (SELECT MAX(first_seq) FROM cube_spans)
    AND last_seq = ?4 - 1 AND last_seq - first_seq + 1 < ?5

UPDATE record_spans SET first_day = MIN(first_day, ?2), last_day = MAX(last_day, ?2)
WHERE first_rid = (SELECT MAX(first_rid) FROM record_spans WHERE first_rid <= ?1)

SELECT
    (SELECT COUNT(*) FROM records WHERE NOT EXISTS (
        SELECT 1 FROM (SELECT * FROM record_spans WHERE first_rid <= records.rid
                       ORDER BY first_rid DESC LIMIT 1) AS s
        WHERE records.rid <= s.last_rid AND records.day BETWEEN s.first_day AND s.last_day)),
    (SELECT COUNT(*) FROM record_spans AS a WHERE a.last_rid < a.first_rid OR a.last_rid >=
        (SELECT MIN(b.first_rid) FROM record_spans AS b WHERE b.first_rid > a.first_rid))

SELECT
    (SELECT COUNT(*) FROM cube WHERE NOT EXISTS (
        SELECT 1 FROM (SELECT * FROM cube_spans WHERE first_seq <= cube.seq
                       ORDER BY first_seq DESC LIMIT 1) AS s
        WHERE cube.seq <= s.last_seq AND cube.day BETWEEN s.first_day AND s.last_day)),
    (SELECT COUNT(*) FROM cube_spans AS a WHERE a.last_seq < a.first_seq OR a.last_seq >=
        (SELECT MIN(b.first_seq) FROM cube_spans AS b WHERE b.first_seq > a.first_seq))

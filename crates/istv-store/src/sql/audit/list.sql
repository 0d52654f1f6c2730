-- The latest $3 entries of actor $1 (any when NULL) at or after $2 (any
-- when NULL), newest first.
SELECT seq, at, actor, organisation, action, route, parameters, figures, status, hash
FROM audit_log
WHERE ($1 IS NULL OR actor = $1) AND ($2 IS NULL OR at >= $2)
ORDER BY seq DESC LIMIT $3

-- A page of entries after seq $1, in order, for verification.
SELECT seq, at, actor, organisation, action, route, parameters, figures, status, hash
FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2

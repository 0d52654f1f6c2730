SELECT row_number, field, code, message FROM upload_errors WHERE upload_id = $1
ORDER BY seq LIMIT $2 OFFSET $3

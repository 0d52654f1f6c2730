UPDATE uploads
SET accepted = accepted + $1,
    duplicates = duplicates + $2,
    corrections = corrections + $3
WHERE id = $4

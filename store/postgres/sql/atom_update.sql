-- Zero rows divides by zero (see run_write).
WITH w AS (
UPDATE ostask_atoms
SET version = $3,
	state = $4,
	attempts = attempts + CASE WHEN $9::boolean THEN 1 ELSE 0 END,
	result = $5,
	failure = $6,
	revert_failure = $7,
	history = $8,
	decision = $13,
	started_at = CASE WHEN $9::boolean THEN $11::timestamptz ELSE started_at END,
	finished_at = CASE WHEN $10::boolean THEN $11::timestamptz WHEN $9::boolean THEN NULL ELSE finished_at END,
	updated_at = $11
WHERE run_id = $1 AND name = $2 AND state = $12
RETURNING 1
)
SELECT 1 / count(*) FROM w

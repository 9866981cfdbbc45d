-- The fence of every write: the epoch held, the sequence expected and,
-- when the flow moves, the state expected. The row lock it takes orders
-- it with a concurrent claim. Zero rows divides by zero: the error aborts
-- the batch's implicit transaction, so a write never half-happens.
WITH w AS (
UPDATE ostask_runs
SET seq = seq + 1,
	updated_at = $1,
	state = CASE WHEN $2 = '' THEN state ELSE $2 END,
	params = COALESCE($3::json, params)
WHERE id = $4 AND epoch = $5 AND seq = $6 AND ($7 = '' OR state = $7)
RETURNING 1
)
SELECT 1 / count(*) FROM w

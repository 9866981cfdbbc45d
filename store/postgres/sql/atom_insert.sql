-- An atom leaving PENDING: a missing row counts as PENDING. Zero rows
-- divides by zero (see run_write).
WITH w AS (
INSERT INTO ostask_atoms AS a (run_id, name, version, state, attempts, result, failure, revert_failure, history, decision,
	started_at, finished_at, updated_at)
VALUES ($1, $2, $3, $4, CASE WHEN $9::boolean THEN 1 ELSE 0 END, $5, $6, $7, $8, $13,
	CASE WHEN $9::boolean THEN $11::timestamptz END, CASE WHEN $10::boolean THEN $11::timestamptz END, $11)
ON CONFLICT (run_id, name) DO UPDATE SET
	version = excluded.version,
	state = excluded.state,
	attempts = a.attempts + CASE WHEN $9::boolean THEN 1 ELSE 0 END,
	result = excluded.result,
	failure = excluded.failure,
	revert_failure = excluded.revert_failure,
	history = excluded.history,
	decision = excluded.decision,
	started_at = CASE WHEN $9::boolean THEN $11::timestamptz ELSE a.started_at END,
	finished_at = CASE WHEN $10::boolean THEN $11::timestamptz WHEN $9::boolean THEN NULL ELSE a.finished_at END,
	updated_at = $11
WHERE a.state = $12
RETURNING 1
)
SELECT 1 / count(*) FROM w

-- A whole batch in one statement, whatever its number of atoms (one text:
-- one prepared statement per connection). r is the fence of every write:
-- the epoch held, the sequence expected and, when the flow moves, the
-- state expected; the row lock it takes orders it with a concurrent claim.
-- The atoms ($8.. are parallel arrays, one element per atom) are written
-- only for the run r returned: i for those leaving PENDING (a missing row
-- counts as PENDING), u for the others, each guarded by its state. When r
-- or any atom's guard finds nothing, the final SELECT divides by zero: the
-- error aborts the statement, so a write never half-happens. Which guard
-- missed is read afterwards (the driver's explain).
WITH r AS (
UPDATE ostask_runs
SET seq = seq + 1,
	updated_at = $1,
	state = CASE WHEN $2 = '' THEN state ELSE $2 END,
	params = COALESCE($3::json, params)
WHERE id = $4 AND epoch = $5 AND seq = $6 AND ($7 = '' OR state = $7)
RETURNING id
), w AS (
SELECT *
FROM unnest($8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
	$16::boolean[], $17::boolean[], $18::text[])
	AS w (name, version, state, result, failure, revert_failure, history, decision, start, finish, from_state)
), i AS (
INSERT INTO ostask_atoms AS a (run_id, name, version, state, attempts, result, failure, revert_failure, history, decision,
	started_at, finished_at, updated_at)
SELECT r.id, w.name, w.version, w.state, CASE WHEN w.start THEN 1 ELSE 0 END, w.result::json, w.failure::json,
	w.revert_failure::json, w.history::json, w.decision,
	CASE WHEN w.start THEN $1::timestamptz END, CASE WHEN w.finish THEN $1::timestamptz END, $1
FROM r, w
WHERE w.from_state = 'PENDING'
ON CONFLICT (run_id, name) DO UPDATE SET
	version = excluded.version,
	state = excluded.state,
	attempts = a.attempts + excluded.attempts,
	result = excluded.result,
	failure = excluded.failure,
	revert_failure = excluded.revert_failure,
	history = excluded.history,
	decision = excluded.decision,
	started_at = COALESCE(excluded.started_at, a.started_at),
	finished_at = CASE WHEN excluded.finished_at IS NOT NULL THEN excluded.finished_at
		WHEN excluded.started_at IS NOT NULL THEN NULL ELSE a.finished_at END,
	updated_at = excluded.updated_at
WHERE a.state = 'PENDING'
RETURNING 1
), u AS (
UPDATE ostask_atoms AS a
SET version = w.version,
	state = w.state,
	attempts = a.attempts + CASE WHEN w.start THEN 1 ELSE 0 END,
	result = w.result::json,
	failure = w.failure::json,
	revert_failure = w.revert_failure::json,
	history = w.history::json,
	decision = w.decision,
	started_at = CASE WHEN w.start THEN $1::timestamptz ELSE a.started_at END,
	finished_at = CASE WHEN w.finish THEN $1::timestamptz WHEN w.start THEN NULL ELSE a.finished_at END,
	updated_at = $1
FROM r, w
WHERE w.from_state <> 'PENDING' AND a.run_id = r.id AND a.name = w.name AND a.state = w.from_state
RETURNING 1
)
SELECT 1 / ((SELECT count(*) FROM r)
	* CASE WHEN (SELECT count(*) FROM i) + (SELECT count(*) FROM u) = COALESCE(cardinality($8::text[]), 0) THEN 1 ELSE 0 END)

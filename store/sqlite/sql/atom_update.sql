UPDATE ostask_atoms
SET version = ?3,
	state = ?4,
	attempts = attempts + ?9,
	result = ?5,
	failure = ?6,
	revert_failure = ?7,
	history = ?8,
	decision = ?13,
	started_at = CASE WHEN ?9 THEN ?11 ELSE started_at END,
	finished_at = CASE WHEN ?10 THEN ?11 WHEN ?9 THEN NULL ELSE finished_at END,
	updated_at = ?11
WHERE run_id = ?1 AND name = ?2 AND state = ?12

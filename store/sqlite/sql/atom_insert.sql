-- An atom leaving PENDING: a missing row counts as PENDING.
INSERT INTO ostask_atoms (run_id, name, version, state, attempts, result, failure, revert_failure, history, decision,
	started_at, finished_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?9, ?5, ?6, ?7, ?8, ?13,
	CASE WHEN ?9 THEN ?11 END, CASE WHEN ?10 THEN ?11 END, ?11)
ON CONFLICT (run_id, name) DO UPDATE SET
	version = excluded.version,
	state = excluded.state,
	attempts = ostask_atoms.attempts + ?9,
	result = excluded.result,
	failure = excluded.failure,
	revert_failure = excluded.revert_failure,
	history = excluded.history,
	decision = excluded.decision,
	started_at = CASE WHEN ?9 THEN ?11 ELSE ostask_atoms.started_at END,
	finished_at = CASE WHEN ?10 THEN ?11 WHEN ?9 THEN NULL ELSE ostask_atoms.finished_at END,
	updated_at = ?11
WHERE ostask_atoms.state = ?12

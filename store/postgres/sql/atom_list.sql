SELECT name, version, state, attempts, result, failure, revert_failure, history, decision, started_at, finished_at, updated_at
FROM ostask_atoms
WHERE run_id = $1

SELECT id, flow, version, params, state, owner, epoch, seq, created_at, updated_at
FROM ostask_runs
WHERE id = $1

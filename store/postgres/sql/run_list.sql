SELECT id, flow, version, params, state, owner, epoch, seq, created_at, updated_at
FROM ostask_runs
WHERE ($1 = '' OR flow = $1) AND ($2 = '' OR state = $2)
ORDER BY created_at DESC, id
LIMIT $3

INSERT INTO ostask_runs (id, flow, version, params, state, owner, epoch, seq, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)

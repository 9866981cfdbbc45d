-- Ownership changes hands with a strictly higher epoch: every write of the
-- previous owner names the old epoch and finds nothing.
UPDATE ostask_runs
SET epoch = epoch + 1, owner = $2, updated_at = $3
WHERE id = $1
RETURNING id, flow, version, params, state, owner, epoch, seq, created_at, updated_at

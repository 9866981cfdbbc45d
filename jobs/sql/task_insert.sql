-- Followed by one row per task: ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $10, $10, $11, 1, $12), ...
-- A task's deadline until its first claim is minus its own timeout (0:
-- the worker's default), which the claim turns into a time.
INSERT INTO ostask_tasks (id, project, kind, status, params, options, idem_key, request_hash, job_id, change, created_at, updated_at, progress_total, events, deadline)
VALUES 
INSERT INTO ostask_tasks (id, project, kind, status, params, options, idem_key, request_hash, job_id, change, created_at, updated_at, progress_total, events)
VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $10, $10, $11, 1)

-- Tasks changed after $1 up to the committed change $6, oldest change
-- first; filters as task_list.
SELECT id, project, kind, status, params, options, idem_key, request_hash, job_id, progress_done, progress_total, progress_current, result, resources, error, attempts, losses, worker, epoch, lease_until, cancel_requested, events, change, deadline, created_at, updated_at, started_at, finished_at FROM ostask_tasks
WHERE change > $1 AND change <= $6 AND ($2 = '' OR project = $2) AND ($3 = '' OR kind = $3) AND ($4 = '' OR status = $4)
ORDER BY change LIMIT $5

-- Tasks whose holder stopped renewing its lease (a dead worker), and
-- queued tasks created before $2 whose River job is running while nobody
-- leased them (a client died between taking the job and the lease; a live
-- one racing with this only gets a redundant job, which finds the lease
-- taken and does nothing).
SELECT t.id, t.job_id, t.worker FROM ostask_tasks t
WHERE t.status IN ('running', 'reverting', 'queued') AND t.worker <> '' AND t.lease_until < $1
UNION ALL
SELECT t.id, t.job_id, t.worker FROM ostask_tasks t JOIN river_job j ON j.id = t.job_id
WHERE t.status = 'queued' AND t.worker = '' AND j.state = 'running' AND t.created_at < $2
LIMIT $3

-- Tasks whose holder stopped renewing its lease (a dead worker), and
-- unleased tasks released before $2 whose River ticket is running: a
-- client died between taking the ticket and the lease. (A live client
-- racing with this only gets a redundant ticket, which finds the lease
-- taken and does nothing.)
SELECT t.id, t.job_id, t.worker FROM ostask_tasks t
WHERE t.status IN ('running', 'reverting', 'queued') AND t.worker <> '' AND t.lease_until < $1
UNION ALL
SELECT t.id, t.job_id, t.worker FROM ostask_tasks t JOIN river_job j ON j.id = t.job_id
WHERE t.status IN ('running', 'reverting', 'queued') AND t.worker = '' AND j.state = 'running' AND t.updated_at < $2
LIMIT $3

SELECT epoch, worker, claimed_at FROM ostask_task_claims WHERE task_id = $1 ORDER BY epoch

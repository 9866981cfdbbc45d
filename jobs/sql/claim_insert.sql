INSERT INTO ostask_task_claims (task_id, epoch, worker, claimed_at) VALUES ($1, $2, $3, $4)

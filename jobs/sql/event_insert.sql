INSERT INTO ostask_task_events (task_id, seq, epoch, body) VALUES ($1, $2, $3, $4)

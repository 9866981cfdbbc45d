INSERT INTO ostask_task_resources (rtype, rid, task_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING

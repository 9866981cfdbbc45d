SELECT 1 FROM ostask_tasks WHERE id = $1

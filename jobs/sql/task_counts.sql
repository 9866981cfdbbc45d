SELECT status, count(*) FROM ostask_tasks GROUP BY status

-- The deadline of a task claimed with its lease (task_lease), from its
-- options, in the lease's transaction.
UPDATE ostask_tasks SET deadline = $2 WHERE id = $1 AND worker = $3 AND deadline = 0

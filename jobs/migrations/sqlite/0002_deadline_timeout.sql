-- Until its first claim a task's deadline holds minus its own timeout in
-- nanoseconds (0: the worker's default), which the claim turns into a
-- time; a binary older than this migration would read such a deadline as
-- long past, so it refuses this schema. Existing tasks are unchanged.
UPDATE ostask_tasks SET deadline = 0 WHERE deadline < 0

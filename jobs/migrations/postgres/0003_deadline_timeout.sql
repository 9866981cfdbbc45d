-- Until its first claim a task's deadline holds minus its own timeout in
-- nanoseconds (0: the worker's default), which the claim turns into a
-- time. A task queued before this migration gets its timeout there too
-- (in Go, after this statement: the options hold Go's duration text).
-- Binaries older than this one read such a deadline as long past and do
-- not check the schema's version (those after it refuse a newer schema):
-- stop every older worker before a newer process opens the database.
UPDATE ostask_tasks SET deadline = 0 WHERE deadline < 0

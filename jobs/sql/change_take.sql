-- The next change number(s): $1 of them; returns the last.
UPDATE ostask_counters SET value = value + $1 WHERE name = 'change' RETURNING value

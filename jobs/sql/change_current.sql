SELECT value FROM ostask_counters WHERE name = 'change'

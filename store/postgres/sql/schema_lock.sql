-- Concurrent openers of one schema migrate one after the other.
SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.ostask_schema'))

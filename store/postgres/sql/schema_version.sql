SELECT COALESCE(MAX(version), 0) FROM ostask_schema

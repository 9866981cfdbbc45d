SELECT to_regclass('ostask_schema') IS NOT NULL

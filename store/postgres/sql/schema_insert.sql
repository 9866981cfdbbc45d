INSERT INTO ostask_schema (version, name) VALUES ($1, $2)

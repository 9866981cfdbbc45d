-- The holder renews its lease; zero rows: it was fenced.
UPDATE ostask_tasks SET lease_until = $3 WHERE id = $1 AND epoch = $2 AND worker = $4
RETURNING cancel_requested

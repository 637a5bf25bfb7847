-- Development data for {{name}}. `goodgo db seed` (and `goodgo db reset`) run every
-- seeds/*.sql file in name order, in one transaction, after the migrations; write them so
-- that running them twice changes nothing.

INSERT INTO notes (body)
SELECT body
FROM (VALUES
    ('Welcome to {{name}}: this note comes from seeds/dev.sql.'),
    ('GET /notes lists notes; POST /notes {"body": "…"} adds one.'),
    ('`goodgo db reset --yes` recreates the database, migrates and seeds it again.')
) AS seed (body)
WHERE NOT EXISTS (SELECT 1 FROM notes n WHERE n.body = seed.body);

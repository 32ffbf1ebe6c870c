-- Item 7: dry_run => true lists the planned actions and changes nothing.
SET search_path = demo, public;
SET TimeZone = 'UTC';
CREATE TABLE dry_before AS
  SELECT (SELECT count(*) FROM pg_class WHERE relname LIKE 'Event%' OR relname LIKE 'Idempotency%') AS relations,
         (SELECT count(*) FROM capacity_rollover_history) AS log_rows,
         (SELECT count(*) FROM "Event") AS event_rows,
         (SELECT count(*) FROM "Event_default") AS default_rows;
INSERT INTO "Event" ("orgId", "createdAt") VALUES ('org4', '2028-01-20 00:00+00');
UPDATE dry_before SET event_rows = event_rows + 1, default_rows = default_rows + 1;
SELECT * FROM capacity_rollover(as_of => '2028-01-12 00:00+00', dry_run => true)
 WHERE table_name::text <> '"AuditEntry"'
 ORDER BY table_name::text, action, partition_name;
SELECT (SELECT count(*) FROM pg_class WHERE relname LIKE 'Event%' OR relname LIKE 'Idempotency%') = relations AS same_relations,
       (SELECT count(*) FROM capacity_rollover_history) = log_rows AS nothing_logged,
       (SELECT count(*) FROM "Event") = event_rows AS same_rows,
       (SELECT count(*) FROM "Event_default") = default_rows AS default_untouched
  FROM dry_before;
DROP TABLE dry_before;

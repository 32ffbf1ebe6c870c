-- Item 4: retention with as_of advanced.  Old periods are detached or
-- dropped per policy, never the current period nor the default partition;
-- detached tables keep their data.
SET search_path = demo, public;
SET TimeZone = 'UTC';
INSERT INTO "IdempotencyRecord" (key, created_at)
SELECT 'k' || g, timestamptz '2026-11-22 00:00+00' + g * interval '1 hour' FROM generate_series(0, 191) g;
-- eight days later the first two days are past the 7-day retention
SELECT * FROM capacity_rollover('"IdempotencyRecord"', as_of => '2026-12-01 12:00+00')
 ORDER BY action, partition_name;
SELECT count(*) AS kept_rows, min(created_at) FROM "IdempotencyRecord";
SELECT to_regclass('"IdempotencyRecord_p20261122"') AS dropped_table;
-- Event keeps 52 weeks and detaches: advance a year
SELECT action, count(*), min(partition_name), max(partition_name)
  FROM capacity_rollover('"Event"', as_of => '2027-11-24 00:00+00') GROUP BY 1 ORDER BY 1;
-- the detached week is a plain table again, with all its rows
SELECT c.relispartition, (SELECT count(*) FROM "Event_p2026w47") AS rows_kept
  FROM pg_class c WHERE c.oid = '"Event_p2026w47"'::regclass;
-- the default partition is still attached, and the current week too
SELECT partition_name FROM capacity_partitions
 WHERE table_name = '"Event"'::regclass AND level = 1
   AND (is_default OR (range_from <= '2027-11-24' AND range_to > '2027-11-24'));
-- the same as_of again: nothing more is detached, the stray rows are reported again
SELECT action, count(*) FROM capacity_rollover('"Event"', as_of => '2027-11-24 00:00+00') GROUP BY 1;

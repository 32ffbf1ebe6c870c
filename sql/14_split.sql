-- Item 5: the partition-split runbook.  Periods created afterwards have 32
-- leaves, periods holding data keep 16, empty future periods are
-- re-created; all rows kept; pruning works in both kinds of period.
SET search_path = demo, public;
SET TimeZone = 'UTC';
SET client_min_messages = warning;
-- a row in one future week keeps that week at 16 leaves
INSERT INTO "Event" ("orgId", "createdAt") VALUES ('org3', '2027-12-08 12:00+00');
SELECT count(*) AS rows_before FROM "Event";
-- one call does all three periods here (the time bound of each call is
-- matter_capacity.lock_timeout, see 22_policy_limits)
SET matter_capacity.lock_timeout = '60s';
SELECT capacity_set_hash_partitions('"Event"', 32, as_of => '2027-11-24 00:00+00');
RESET matter_capacity.lock_timeout;
SELECT range_from::date, count(*) AS leaves
  FROM capacity_partitions p
 WHERE table_name = '"Event"'::regclass AND level = 2 AND range_from >= '2027-11-15'
 GROUP BY 1 ORDER BY 1;
SELECT count(*) AS rows_after FROM "Event";
-- the next period rolled over gets 32 leaves
SELECT * FROM capacity_rollover('"Event"', as_of => '2027-12-01 00:00+00');
SELECT action, partition_name, detail FROM capacity_rollover_log
 WHERE table_name = 'demo."Event"' AND as_of = '2027-11-24 00:00+00' AND action = 'dropped'
 ORDER BY partition_name;
-- pruning in a 16-leaf and in a 32-leaf period: one leaf each
SELECT * FROM scanned($q$SELECT * FROM "Event" WHERE "orgId" = 'org3'
   AND "createdAt" >= '2027-12-06' AND "createdAt" < '2027-12-13'$q$);
SELECT * FROM scanned($q$SELECT * FROM "Event" WHERE "orgId" = 'org3'
   AND "createdAt" >= '2027-12-27' AND "createdAt" < '2028-01-03'$q$);
SELECT count(*) FROM "Event" WHERE "orgId" = 'org3' AND "createdAt" >= '2027-12-06' AND "createdAt" < '2027-12-13';

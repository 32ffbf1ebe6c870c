-- Item 3: rows outside every partition wait in the default partition; the
-- rollover whose range covers them creates the partition and moves them
-- out.  Nothing is lost; rows no policy range covers stay and are reported.
SET search_path = demo, public;
SET TimeZone = 'UTC';
CREATE TABLE rescue_before AS SELECT * FROM "Event";
-- week 2027w02 does not exist yet (premake ends at 2026-12-28)
INSERT INTO "Event" ("orgId", "createdAt")
SELECT 'org' || (g % 7), timestamptz '2027-01-11 00:00+00' + g * interval '1 hour'
  FROM generate_series(0, 99) g;
-- far in the future and far in the past: no policy range will cover them
INSERT INTO "Event" ("orgId", "createdAt") VALUES
  ('org1', '2031-06-01 00:00+00'), ('org2', '2019-03-04 00:00+00');
SELECT count(*) AS in_default FROM "Event_default";
CREATE TABLE rescue_expected AS
  SELECT * FROM rescue_before UNION ALL
  SELECT * FROM ONLY "Event_default";
-- as_of moves forward so the premake window reaches 2027w02
SELECT * FROM capacity_rollover('"Event"', as_of => '2026-12-16 00:00+00')
 ORDER BY action, partition_name;
SELECT "createdAt" FROM "Event_default" ORDER BY 1;
-- identical content before and after: no row lost, none duplicated
SELECT (SELECT count(*) FROM "Event") AS now_rows,
       (SELECT count(*) FROM rescue_expected) AS expected_rows,
       (SELECT count(*) FROM (SELECT * FROM "Event" EXCEPT ALL SELECT * FROM rescue_expected) d) AS extra,
       (SELECT count(*) FROM (SELECT * FROM rescue_expected EXCEPT ALL SELECT * FROM "Event") d) AS missing;
-- the rescued rows now live in their own week's leaves
SELECT tableoid::regclass::text LIKE 'demo."Event_p2027w02_h%' AS in_own_week, count(*)
  FROM "Event" WHERE "createdAt" >= '2027-01-11' AND "createdAt" < '2027-01-16' GROUP BY 1;
DROP TABLE rescue_before, rescue_expected;
-- a table without retention: a backdated row inside the managed range is
-- rescued into a new past period
INSERT INTO "AuditEntry" ("orgId", "createdAt", action) VALUES ('org9', '2028-03-10', 'late write');
SELECT * FROM capacity_rollover('"AuditEntry"', as_of => '2029-01-15 00:00+00') ORDER BY action;
SELECT count(*) AS audit_default_rows FROM "AuditEntry_default";

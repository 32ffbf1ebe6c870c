-- Item 2: a tenant + one-week query scans one leaf (two at a period
-- boundary); a time-window-only query scans that period's leaves only.
SET search_path = demo, public;
SET TimeZone = 'UTC';
INSERT INTO "Event" ("orgId", "createdAt")
SELECT 'org' || (g % 300), timestamptz '2026-11-16 00:00+00' + g * interval '1 minute'
  FROM generate_series(0, 20000) g;
ANALYZE "Event";
-- scanned relations of a plan, leaves only
CREATE FUNCTION demo.scanned(q text) RETURNS TABLE(relname text) LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
    relname := substring(line from '(?:Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan) (?:using \S+ )?on "?([A-Za-z_0-9]+)');
    IF relname IS NOT NULL THEN RETURN NEXT; END IF;
  END LOOP;
END $$;
SELECT * FROM scanned($q$SELECT * FROM "Event" WHERE "orgId" = 'org5'
   AND "createdAt" >= '2026-11-23' AND "createdAt" < '2026-11-30'$q$);
-- a window across the boundary of two weeks: one leaf in each
SELECT * FROM scanned($q$SELECT * FROM "Event" WHERE "orgId" = 'org5'
   AND "createdAt" >= '2026-11-20' AND "createdAt" < '2026-11-27'$q$) ORDER BY 1;
-- time window alone: the 16 leaves of that week, no other period, no default
SELECT count(*) AS leaves, count(DISTINCT left(relname, 14)) AS periods,
       min(left(relname, 14)) AS period
  FROM scanned($q$SELECT count(*) FROM "Event"
   WHERE "createdAt" >= '2026-11-23' AND "createdAt" < '2026-11-30'$q$);
-- the answers are right, not only fast
SELECT count(*) FROM "Event" WHERE "orgId" = 'org5'
   AND "createdAt" >= '2026-11-16' AND "createdAt" < '2026-11-30';

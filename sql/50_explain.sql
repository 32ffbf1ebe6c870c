-- EXPLAIN-stability: partitions a query would scan, found by planning and
-- starting it (never running it).
CREATE SCHEMA ex;
SET search_path = ex, public;
SET TimeZone = 'UTC';
CREATE TABLE "Event" (id bigint, "orgId" text NOT NULL, "createdAt" timestamptz NOT NULL)
  PARTITION BY RANGE ("createdAt");
SELECT capacity_manage('ex."Event"', 'createdAt', 'week', 'orgId', 16, premake => 4);
SELECT count(*) FROM capacity_rollover('ex."Event"', as_of => '2026-11-22 00:00+00');
-- tenant + one week: one leaf; across a week boundary: two
SELECT capacity_explain_partitions($$SELECT * FROM "Event" WHERE "orgId" = 'acme'
   AND "createdAt" >= '2026-11-23' AND "createdAt" < '2026-11-30'$$) AS tenant_week;
SELECT capacity_explain_partitions($$SELECT * FROM "Event" WHERE "orgId" = 'acme'
   AND "createdAt" >= '2026-11-20' AND "createdAt" < '2026-11-27'$$) AS across_boundary;
-- time window alone: that week's 16 leaves
SELECT capacity_explain_partitions($$SELECT count(*) FROM "Event"
   WHERE "createdAt" >= '2026-11-23' AND "createdAt" < '2026-11-30'$$) AS week_only;
-- regressions the check must catch
SELECT capacity_explain_partitions($$SELECT * FROM "Event" WHERE "orgId" = 'acme'$$) AS no_time_predicate;
SELECT capacity_explain_partitions($$SELECT * FROM "Event" WHERE "orgId" = 'acme'
   AND date_trunc('week', "createdAt") = '2026-11-23'$$) AS wrapped_column;
SELECT capacity_explain_partitions($$SELECT * FROM "Event" WHERE lower("orgId") = 'acme'
   AND "createdAt" >= '2026-11-23' AND "createdAt" < '2026-11-30'$$) AS tenant_through_function;
-- a cast on the tenant column: ::bpchar compares differently and defeats
-- hash pruning; a plain ::varchar is only a relabel and still prunes
SELECT capacity_explain_partitions($$SELECT * FROM "Event" WHERE "orgId"::bpchar = 'acme'
   AND "createdAt" >= '2026-11-23' AND "createdAt" < '2026-11-30'$$) AS tenant_cast_bpchar;
SELECT capacity_explain_partitions($$SELECT * FROM "Event" WHERE "orgId"::varchar = 'acme'
   AND "createdAt" >= '2026-11-23' AND "createdAt" < '2026-11-30'$$) AS tenant_relabel_varchar;
-- parameters: custom plan and the generic plan of a prepared statement;
-- start-up pruning keeps the generic plan at one leaf
SELECT partitions, custom_partitions, generic_partitions
  FROM capacity_explain_detail($$SELECT * FROM "Event" WHERE "orgId" = $1
       AND "createdAt" >= $2 AND "createdAt" < $3$$, ARRAY['acme', '2026-11-23', '2026-11-30']);
-- where no pruning can apply, both plans scan everything and the check says so
SELECT partitions, custom_partitions, generic_partitions
  FROM capacity_explain_detail($$SELECT * FROM "Event" WHERE "orgId" = $1
       AND date_trunc('week', "createdAt") = $2$$, ARRAY['acme', '2026-11-23']);
-- the same shape gives the same signature; another shape another one
SELECT count(DISTINCT signature) AS signatures FROM (
  SELECT signature FROM capacity_explain_detail($$SELECT * FROM "Event" WHERE "orgId" = $1
       AND "createdAt" >= $2 AND "createdAt" < $3$$, ARRAY['acme', '2026-11-23', '2026-11-30'])
  UNION ALL
  SELECT signature FROM capacity_explain_detail($$SELECT * FROM "Event" WHERE "orgId" = $1
       AND "createdAt" >= $2 AND "createdAt" < $3$$, ARRAY['zeta', '2026-11-30', '2026-12-07'])) s;
SELECT count(DISTINCT signature) AS signatures FROM (
  SELECT signature FROM capacity_explain_detail($$SELECT * FROM "Event" WHERE "orgId" = 'a'$$)
  UNION ALL
  SELECT signature FROM capacity_explain_detail($$SELECT id FROM "Event" WHERE "orgId" = 'a' ORDER BY id$$)) s;
-- nothing is executed: a volatile function with a side effect leaves no trace
CREATE TABLE side_effects (x int);
CREATE FUNCTION noisy() RETURNS int LANGUAGE sql VOLATILE AS $$ INSERT INTO side_effects VALUES (1) RETURNING 1 $$;
SELECT capacity_explain_partitions($$SELECT noisy(), * FROM "Event" WHERE "orgId" = 'a'
   AND "createdAt" >= '2026-11-23' AND "createdAt" < '2026-11-30'$$) AS with_volatile;
SELECT capacity_explain_partitions($$SELECT * FROM "Event" WHERE "createdAt" >= '2026-11-23'
   AND "createdAt" < '2026-11-30' AND id = (SELECT noisy())$$) AS with_initplan;
SELECT count(*) AS side_effects FROM side_effects;
-- FOR UPDATE is accepted (planned, no row locked)
SELECT capacity_explain_partitions($$SELECT * FROM "Event" WHERE "orgId" = 'a'
   AND "createdAt" >= '2026-11-23' AND "createdAt" < '2026-11-30' FOR UPDATE$$) AS for_update;
-- anything but one SELECT is refused
SELECT * FROM try($q$SELECT capacity_explain_partitions('DELETE FROM ex."Event"')$q$);
SELECT * FROM try($q$SELECT capacity_explain_partitions('SELECT 1; SELECT 2')$q$);
SELECT * FROM try($q$SELECT capacity_explain_partitions('WITH d AS (DELETE FROM ex.side_effects RETURNING *) SELECT * FROM d')$q$);
SELECT * FROM try($q$SELECT capacity_explain_partitions('SELECT 1 INTO TEMP t')$q$);
SELECT * FROM try($q$SELECT capacity_explain_partitions('SELEC 1')$q$);
SELECT * FROM try($q$SELECT capacity_explain_partitions('SELECT $1::int', ARRAY['1', '2'])$q$);
SELECT count(*) AS still_no_side_effects FROM side_effects;

-- registered checks: capacity_manage registered the defaults of ex."Event"
SELECT name, query, max_partitions, params FROM capacity_explain_check
 WHERE table_name = 'ex."Event"'::regclass ORDER BY name;
SELECT name, partitions_scanned, max_partitions, passed, plan_changed
  FROM capacity_explain_run('2026-11-22 10:00+00') WHERE name LIKE 'ex.%' ORDER BY name;
-- an application's own check, and a regression it catches
SELECT capacity_explain_register('ex: tenant timeline',
       $$SELECT * FROM "Event" WHERE "orgId" = $1 AND "createdAt" >= $2 AND "createdAt" < $3$$,
       1, ARRAY['acme', '2026-11-23', '2026-11-30']);
SELECT capacity_explain_register('ex: tenant by function',
       $$SELECT * FROM "Event" WHERE lower("orgId") = $1 AND "createdAt" >= $2 AND "createdAt" < $3$$,
       1, ARRAY['acme', '2026-11-23', '2026-11-30']);
SELECT name, partitions_scanned, max_partitions, passed FROM capacity_explain_run('2026-11-22 10:00+00')
 WHERE name LIKE 'ex: %' ORDER BY name;
SELECT labels, value FROM capacity_latest WHERE indicator = 'explain_failures';
-- a new index changes the plan: the signature says so
CREATE INDEX ON ex."Event" ("orgId", "createdAt");
SELECT name, passed, plan_changed FROM capacity_explain_run('2026-11-22 10:00+00')
 WHERE name = 'ex: tenant timeline';
SELECT name, passed, plan_changed FROM capacity_explain_run('2026-11-22 10:00+00')
 WHERE name = 'ex: tenant timeline';
DELETE FROM capacity_explain_check WHERE name = 'ex: tenant by function';
-- a check runs as the role that registered it, even when a superuser runs it
CREATE ROLE mc_checker;
GRANT USAGE ON SCHEMA ex TO mc_checker;
GRANT SELECT ON ex."Event" TO mc_checker;
GRANT EXECUTE ON FUNCTION capacity_explain_register(text, text, integer, text[]) TO mc_checker;
SET ROLE mc_checker;
SELECT capacity_explain_register('ex: checker', $$SELECT * FROM "Event" WHERE "orgId" = 'a'
   AND "createdAt" >= '2026-11-23' AND "createdAt" < '2026-11-30'$$, 1);
RESET ROLE;
REVOKE SELECT ON ex."Event" FROM mc_checker;
SELECT name, partitions_scanned, passed FROM capacity_explain_run('2026-11-22 10:00+00') WHERE name = 'ex: checker';
SELECT error FROM capacity_explain_result WHERE name = 'ex: checker' ORDER BY id DESC LIMIT 1;
DELETE FROM capacity_explain_check WHERE name = 'ex: checker';
REVOKE ALL ON SCHEMA ex FROM mc_checker;
REVOKE EXECUTE ON FUNCTION capacity_explain_register(text, text, integer, text[]) FROM mc_checker;
DROP ROLE mc_checker;
-- registration errors name the check and store nothing
SELECT * FROM try($q$SELECT capacity_explain_register('ex: typo', 'SELEC 1', 1)$q$);
SELECT * FROM try($q$SELECT capacity_explain_register('ex: dml', 'DELETE FROM ex."Event"', 1)$q$);
SELECT * FROM try($q$SELECT capacity_explain_register('ex: negative', 'SELECT 1', -1)$q$);
SELECT count(*) AS stored FROM capacity_explain_check WHERE name IN ('ex: typo', 'ex: dml', 'ex: negative');

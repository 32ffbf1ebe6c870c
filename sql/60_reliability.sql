-- Reliability items that a single session can show (issue 6):
-- hostile objects on the search path are never called by the extension,
-- and the install can be dropped and created again cleanly.
SET TimeZone = 'UTC';

-- a schema placed before pg_catalog shadows a function and an operator the
-- extension uses; every call of them is logged
CREATE SCHEMA hostile;
CREATE TABLE hostile.calls (what text);
GRANT INSERT ON hostile.calls TO PUBLIC;
GRANT USAGE ON SCHEMA hostile TO PUBLIC;
CREATE FUNCTION hostile.date_trunc(text, timestamp) RETURNS timestamp LANGUAGE plpgsql AS $$
BEGIN INSERT INTO hostile.calls VALUES ('date_trunc'); RETURN pg_catalog.date_trunc($1, $2); END $$;
CREATE FUNCTION hostile.count_text_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN INSERT INTO hostile.calls VALUES ('='); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR hostile.= (LEFTARG = text, RIGHTARG = text, FUNCTION = hostile.count_text_eq);
CREATE FUNCTION hostile.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN INSERT INTO hostile.calls VALUES ('now'); RETURN pg_catalog.now(); END $$;

CREATE SCHEMA rel;
CREATE TABLE rel."Event" ("orgId" text NOT NULL, "createdAt" timestamptz NOT NULL) PARTITION BY RANGE ("createdAt");
SET search_path = hostile, pg_catalog, rel, public;
-- the hostile operator is what an unqualified = would pick now
SELECT 'a'::text = 'a'::text AS hostile_operator_active;
SELECT count(*) AS calls_so_far FROM hostile.calls;
TRUNCATE hostile.calls;
SELECT public.capacity_manage('rel."Event"', 'createdAt', 'week', 'orgId', 4, premake => 2);
SELECT action, count(*) FROM public.capacity_rollover('rel."Event"', as_of => '2026-11-22 00:00+00') GROUP BY 1 ORDER BY 1;
INSERT INTO rel."Event" VALUES ('a', '2027-03-01 00:00+00');   -- lands in the default partition
INSERT INTO rel."Event" VALUES ('b', '2026-12-24 00:00+00');
SELECT action, count(*) FROM public.capacity_rollover('rel."Event"', as_of => '2026-12-20 00:00+00') GROUP BY 1 ORDER BY 1;
SELECT public.capacity_sample_now('2026-12-20 00:00+00') > 0 AS sampled;
SELECT public.capacity_register_push('hostile_test_metric', 'count');
SELECT public.capacity_record('hostile_test_metric', 1, '{"k": "v"}', '2026-12-20 00:00+00');
SELECT count(*) > 0 AS evaluated FROM public.capacity_stage('2026-12-20 00:00+00');
SELECT count(*) > 0 AS reported FROM public.capacity_report('2026-12-20 00:00+00');
SELECT count(*) > 0 AS forecast FROM public.capacity_forecast('2026-12-20 00:00+00');
SELECT public.capacity_roll_up_days('2026-12-19 00:00+00', '2026-12-20 00:00+00') > 0 AS rolled_up;
SELECT (public.capacity_fit_trend('{-2,-1,0}', '{1,2,3}', 5, '>', NULL, 3)).verdict;
SELECT count(*) AS checks FROM public.capacity_explain_run('2026-12-20 00:00+00') WHERE name LIKE 'rel.%';
SET client_min_messages = warning;
SET matter_capacity.lock_timeout = '60s';
SELECT public.capacity_set_hash_partitions('rel."Event"', 8, as_of => '2026-12-20 00:00+00');
RESET matter_capacity.lock_timeout;
RESET client_min_messages;
-- nothing of hostile was called by the extension
SELECT what, count(*) FROM hostile.calls GROUP BY 1 ORDER BY 1;
SET search_path = public;
DELETE FROM capacity_indicator WHERE name = 'hostile_test_metric';
SET client_min_messages = warning;
DROP SCHEMA hostile CASCADE;
RESET client_min_messages;

-- shipped catalog rows: only the user's rows are dumped (80_dump.sql)
SET search_path = public;
SELECT count(*) FILTER (WHERE shipped) AS shipped, count(*) FILTER (WHERE NOT shipped) AS own
  FROM capacity_trigger;
-- editing a shipped row makes it the user's; an update that changes nothing does not
UPDATE capacity_trigger SET threshold = threshold WHERE name = 'audit_rows';
UPDATE capacity_trigger SET threshold = 50e6 WHERE name = 'event_rows';
SELECT name, threshold, shipped FROM capacity_trigger WHERE name IN ('audit_rows', 'event_rows') ORDER BY 1;
SELECT public.capacity_set_threshold('write_slo_ms', 300);
SELECT name, value, shipped FROM capacity_setting WHERE NOT shipped;
-- a full row inserted over a shipped, unedited one replaces it (what pg_restore does) ...
INSERT INTO capacity_trigger (name, stage, indicator, aggregate, comparator, threshold, sustain, description)
VALUES ('cdc_lag', NULL, 'cdc_lag_p99_seconds', 'all', '>', 5, '10 minutes', 'CDC lag p99 > 5 s for 10 min');
SELECT name, threshold, sustain, shipped FROM capacity_trigger WHERE name = 'cdc_lag';
-- ... but over the user's own row it is a plain duplicate
SELECT * FROM public.try($$INSERT INTO capacity_trigger (name, indicator, threshold, description)
                          VALUES ('cdc_lag', 'cdc_lag_p99_seconds', 9, 'again')$$);
-- deleting a shipped row is remembered; restoring the record deletes the fresh copy
DELETE FROM capacity_trigger WHERE name = 'sandbox_live_ratio';
SELECT table_name, key FROM capacity_removed_default;
DELETE FROM capacity_removed_default;
INSERT INTO capacity_trigger (name, indicator, aggregate, comparator, threshold, sustain, description, shipped)
VALUES ('sandbox_live_ratio', 'sandbox_live_write_ratio', 'latest', '>', 100, '0', 'sandbox-vs-live write ratio per org > 100x', true);
INSERT INTO capacity_removed_default (table_name, key) VALUES ('capacity_trigger', 'sandbox_live_ratio');
SELECT count(*) AS sandbox_trigger_left FROM capacity_trigger WHERE name = 'sandbox_live_ratio';
SELECT * FROM public.try($$INSERT INTO capacity_removed_default (table_name, key) VALUES ('capacity_policy', 'x')$$);
-- put the ladder back as shipped for the tests after this one
DELETE FROM capacity_trigger WHERE name = 'cdc_lag';
INSERT INTO capacity_trigger (name, indicator, aggregate, comparator, threshold, sustain, description, shipped)
VALUES ('cdc_lag', 'cdc_lag_p99_seconds', 'all', '>', 1, '5 minutes', 'CDC lag p99 > 1 s for 5 min', true),
       ('sandbox_live_ratio', 'sandbox_live_write_ratio', 'latest', '>', 100, '0', 'sandbox-vs-live write ratio per org > 100x', true);
UPDATE capacity_trigger SET threshold = 100e6, shipped = true WHERE name = 'event_rows';
SELECT public.capacity_set_threshold('write_slo_ms', 200);
UPDATE capacity_setting SET shipped = true WHERE name = 'write_slo_ms';
DELETE FROM capacity_removed_default;
SELECT count(*) AS own_rows FROM capacity_trigger WHERE NOT shipped;

-- drop and create again: the same objects, nothing left behind
SELECT count(*) AS objects_before,
       string_agg(pg_describe_object(classid, objid, objsubid), '|' ORDER BY pg_describe_object(classid, objid, objsubid) COLLATE "C") AS members_before
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'matter_capacity') \gset
SELECT :objects_before > 50 AS many_objects;
CREATE DATABASE mc_reinstall;
\c mc_reinstall
SET client_min_messages = warning;
CREATE EXTENSION matter_capacity;
DROP EXTENSION matter_capacity;
SELECT count(*) AS leftovers FROM pg_class WHERE relname LIKE 'capacity\_%';
SELECT count(*) AS leftover_functions FROM pg_proc WHERE proname LIKE 'capacity\_%';
CREATE EXTENSION matter_capacity;
SELECT count(*) = :objects_before AS same_objects_after_reinstall FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'matter_capacity');
-- by name: members only one of the two databases has (none)
WITH now_ AS (SELECT pg_describe_object(classid, objid, objsubid) AS member FROM pg_depend
               WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
                 AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'matter_capacity')),
     before AS (SELECT unnest(string_to_array(:'members_before', '|')) AS member)
(SELECT 'only before' AS side, member FROM before EXCEPT SELECT 'only before', member FROM now_)
UNION ALL
(SELECT 'only after', member FROM now_ EXCEPT SELECT 'only after', member FROM before)
ORDER BY 1, 2;
\c contrib_regression
DROP DATABASE mc_reinstall;

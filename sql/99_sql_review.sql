-- Review breaker2, SQL layer: time arguments (F2), plan imports and shared
-- settings (F5).
SET TimeZone = 'UTC';
\set VERBOSITY terse
SELECT capacity_plan_install('tiers-abc');
-- F2: an infinite as_of made the N-day rules' generate_series unbounded
-- (20 GB of temp files); a time at the end of the range overflowed bare.
-- One check (capacity_check_time) for every function: 22008/22004/22023,
-- the function and the argument named, a hint.
SELECT * FROM public.try($$SELECT * FROM capacity_stage(as_of => 'infinity', plan => 'tiers-abc')$$);
SELECT * FROM public.try($$SELECT * FROM capacity_stage(as_of => '-infinity', plan => 'tiers-abc')$$);
SELECT * FROM public.try($$SELECT * FROM capacity_stage(as_of => '294276-12-30', plan => 'tiers-abc')$$);
SELECT * FROM public.try($$SELECT * FROM capacity_stage(as_of => 'infinity')$$);
SELECT * FROM public.try($$SELECT * FROM capacity_stage(as_of => NULL)$$);
SELECT * FROM public.try($$SELECT * FROM capacity_stage(as_of => '2026-03-01', horizon => '100000 years')$$);
SELECT * FROM public.try($$SELECT * FROM capacity_stage(as_of => '2026-03-01', horizon => NULL)$$);
SELECT * FROM public.try($$SELECT * FROM capacity_trigger_eval('infinity', capacity_bindings(), 'tiers-abc')$$);
SELECT * FROM public.try($$SELECT * FROM capacity_trigger_eval('-infinity', capacity_bindings())$$);
SELECT * FROM public.try($$SELECT * FROM capacity_report(as_of => 'infinity')$$);
SELECT * FROM public.try($$SELECT capacity_report_html(as_of => '4713-01-02 BC')$$);
SELECT * FROM public.try($$SELECT capacity_report_html(as_of => '2026-03-01', horizon => '-1 day')$$);
SELECT * FROM public.try($$SELECT * FROM capacity_forecast(as_of => 'infinity')$$);
SELECT * FROM public.try($$SELECT * FROM capacity_plan_grid('tiers-abc', 'infinity')$$);
SELECT * FROM public.try($$SELECT capacity_decide('stay', 'x', as_of => 'infinity')$$);
SELECT * FROM public.try($$SELECT * FROM capacity_explain_run('infinity')$$);
-- the edges still evaluate
SELECT count(*) AS rows_in_1000 FROM capacity_stage(as_of => '1000-01-02', plan => 'tiers-abc');
SELECT count(*) AS rows_in_9998 FROM capacity_stage(as_of => '9998-06-01', horizon => '6 months', plan => 'tiers-abc');

-- F5: importing a plan does not rewrite the shared settings every plan and
-- the ladder read: a setting that exists keeps its value (NOTICE) unless
-- the document says "replace": true and the caller may set thresholds.
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT name, value FROM capacity_setting WHERE name IN ('write_slo_ms', 'cache_hit_target') ORDER BY name;
SELECT capacity_plan_import('{"name": "side-plan", "settings": {"write_slo_ms": {"value": 1e12}, "cache_hit_target": {"value": 1e-9},
  "side_only_ms": {"value": 7}},
  "alerts": [{"name": "x", "when": {"any": [{"indicator": "cpu_utilization", "comparator": ">", "threshold": 1, "setting": "write_slo_ms"}]}}]}');
SELECT name, value FROM capacity_setting WHERE name IN ('write_slo_ms', 'cache_hit_target', 'side_only_ms') ORDER BY name;
SELECT trigger_name, threshold FROM capacity_trigger_eval('2026-03-01', capacity_bindings())
 WHERE trigger_name IN ('write_p99_over_slo_half', 'cache_hit_ratio') ORDER BY 1;
-- "replace" must be a boolean
SELECT * FROM public.try($$SELECT capacity_plan_import('{"name": "side-plan", "settings": {"write_slo_ms": {"value": 200, "replace": "yes"}},
  "alerts": [{"name": "x", "when": {"any": [{"indicator": "cpu_utilization", "comparator": ">", "threshold": 1}]}}]}')$$);
-- a plan author granted only capacity_plan_import may not replace it
CREATE ROLE mc_plan_author;
GRANT EXECUTE ON FUNCTION capacity_plan_import(jsonb) TO mc_plan_author;
SET SESSION AUTHORIZATION mc_plan_author;
SELECT * FROM public.try($$SELECT capacity_plan_import('{"name": "side-plan", "settings": {"write_slo_ms": {"value": 1e12, "replace": true}},
  "alerts": [{"name": "x", "when": {"any": [{"indicator": "cpu_utilization", "comparator": ">", "threshold": 1}]}}]}')$$);
RESET SESSION AUTHORIZATION;
SELECT name, value FROM capacity_setting WHERE name = 'write_slo_ms';
-- the DBA may, when the document says so
SELECT capacity_plan_import('{"name": "side-plan", "settings": {"write_slo_ms": {"value": 250, "replace": true}},
  "alerts": [{"name": "x", "when": {"any": [{"indicator": "cpu_utilization", "comparator": ">", "threshold": 1}]}}]}');
SELECT name, value FROM capacity_setting WHERE name = 'write_slo_ms';
SELECT capacity_set_threshold('write_slo_ms', 200);
UPDATE capacity_setting SET shipped = true WHERE name = 'write_slo_ms';   -- as shipped again
DELETE FROM capacity_plan WHERE name = 'side-plan';
DELETE FROM capacity_setting WHERE name = 'side_only_ms';
REVOKE EXECUTE ON FUNCTION capacity_plan_import(jsonb) FROM mc_plan_author;
DROP ROLE mc_plan_author;
\set VERBOSITY terse

-- L1: NULL arguments of the plan functions are 22004 (as capacity_plan_use)
SELECT * FROM public.try($$SELECT capacity_plan_set_tier(NULL, 'A', 'x')$$);
SELECT * FROM public.try($$SELECT capacity_plan_set_tier('tiers-abc', NULL, 'x')$$);
SELECT * FROM public.try($$SELECT capacity_plan_export(NULL)$$);
SELECT * FROM public.try($$SELECT capacity_plan_install(NULL)$$);
SELECT * FROM public.try($$SELECT capacity_plan_import(NULL)$$);

-- L5: capacity_plans.preset says whether a plan is as shipped: the ladder
-- with an edited trigger is not (earlier tests edit it too); a preset
-- whose setting was changed is not, and is again once it is put back
SELECT capacity_set_threshold('cluster_write_capacity_qps', 2000);   -- tiers-abc's value
SELECT name, preset FROM capacity_plans WHERE name = 'tiers-abc';
SELECT threshold AS shipped_threshold FROM capacity_trigger WHERE name = 'primary_cpu_sustained' \gset
UPDATE capacity_trigger SET threshold = 99 WHERE name = 'primary_cpu_sustained';
SELECT capacity_set_threshold('cluster_write_capacity_qps', 12345);
SELECT name, preset FROM capacity_plans WHERE name IN ('matter-six-stage', 'tiers-abc') ORDER BY name;
UPDATE capacity_trigger SET threshold = :shipped_threshold WHERE name = 'primary_cpu_sustained';
SELECT capacity_set_threshold('cluster_write_capacity_qps', 2000);
SELECT name, preset FROM capacity_plans WHERE name = 'tiers-abc';

-- L6: an N-day rule's verdict on a series does not depend on another
-- series.  Future-dated values (2030) pushed into a day already rolled up
-- re-roll it, as values in the past do: Jan 9 averages 316 after the late
-- push, so the 3-day rule is ok before and after a sample of {"region": "eu"}.
SELECT count(capacity_record('recall_p95_ms', 950, '{}', d + h * interval '1 hour'))
  FROM generate_series('2030-01-08 00:00+00'::timestamptz, '2030-01-10 00:00+00', '1 day') d, generate_series(0, 23) h;
SELECT capacity_roll_up_hours('2030-01-01', '2030-01-12') > 0 AS hours, capacity_roll_up_days('2030-01-01', '2030-01-12') > 0 AS days;
SELECT status FROM capacity_trigger_eval('2030-01-11 09:00+00', capacity_bindings(), 'tiers-abc') WHERE trigger_name = 'B.recall_p95';
SELECT count(capacity_record('recall_p95_ms', 0, '{}', '2030-01-09 00:30+00'::timestamptz + g * interval '1 minute'))
  FROM generate_series(1, 48) g;
SELECT day, round(avg::numeric, 1) AS avg, count FROM capacity_sample_daily WHERE indicator = 'recall_p95_ms' ORDER BY day;
SELECT labels, status FROM capacity_trigger_eval('2030-01-11 09:00+00', capacity_bindings(), 'tiers-abc') WHERE trigger_name = 'B.recall_p95';
SELECT count(capacity_record('recall_p95_ms', 5000, '{"region":"eu"}', d))
  FROM generate_series('2030-01-09 12:00+00'::timestamptz, '2030-01-10 12:00+00', '1 day') d;
SELECT labels, status FROM capacity_trigger_eval('2030-01-11 09:00+00', capacity_bindings(), 'tiers-abc')
 WHERE trigger_name = 'B.recall_p95' ORDER BY labels::text;

-- Review 4 (F6): bad input answers with an error or NULL, not a verdict
SELECT capacity_breaches(1, '; drop table x', 1) AS unknown_comparator,
       capacity_breaches('NaN', '>', 1) AS nan_value, capacity_breaches(1, '<', 'NaN') AS nan_threshold,
       capacity_breaches(2, '>', 1) AS two_over_one, capacity_breaches(1, '<=', 1) AS one_at_most_one;
\set VERBOSITY default
SELECT capacity_record(NULL, 1);
DO $$ BEGIN PERFORM capacity_check_indicator_name(repeat('a', 100000));
EXCEPTION WHEN invalid_name THEN RAISE NOTICE 'message: % bytes: %', octet_length(SQLERRM), left(SQLERRM, 90); END $$;
SELECT * FROM capacity_fleet_poll('no such member');
\set VERBOSITY terse

-- Review 4 (F6): a table owner granted only capacity_convert is told every
-- grant it lacks before anything is done (it used to fail midway, or swap
-- the table and then fail to record the conversion)
CREATE ROLE review4_owner;
GRANT CREATE ON SCHEMA public TO review4_owner;
SET ROLE review4_owner;
CREATE TABLE public.review4_ev (id bigint, at timestamptz NOT NULL, PRIMARY KEY (id, at));
INSERT INTO public.review4_ev SELECT g, '2026-11-01 00:00+00'::timestamptz + g * interval '1 hour' FROM generate_series(1, 50) g;
RESET ROLE;
GRANT EXECUTE ON PROCEDURE capacity_convert(regclass, name, text, name, integer, integer, interval, text, boolean, timestamptz)
   TO review4_owner;
SET ROLE review4_owner;
\set VERBOSITY default
CALL capacity_convert('public.review4_ev'::regclass, 'at'::name, 'day'::text);
\set VERBOSITY terse
SELECT relkind, (SELECT count(*) FROM public.review4_ev) AS rows FROM pg_class WHERE relname = 'review4_ev';
RESET ROLE;
DROP TABLE public.review4_ev;
REVOKE ALL ON SCHEMA public FROM review4_owner;
REVOKE ALL ON PROCEDURE capacity_convert(regclass, name, text, name, integer, integer, interval, text, boolean, timestamptz) FROM review4_owner;
DROP ROLE review4_owner;

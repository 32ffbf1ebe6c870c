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
SELECT count(*) AS rows_at_1900 FROM capacity_stage(as_of => '1900-01-02', plan => 'tiers-abc');
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
DELETE FROM capacity_plan WHERE name = 'side-plan';
DELETE FROM capacity_setting WHERE name = 'side_only_ms';
REVOKE EXECUTE ON FUNCTION capacity_plan_import(jsonb) FROM mc_plan_author;
DROP ROLE mc_plan_author;
\set VERBOSITY terse

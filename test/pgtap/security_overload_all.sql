-- pgTAP: look-alikes of EVERY function of the extension, planted in the
-- extension's own schema by a role that may create there (review F7).
-- Schema qualification does not stop these: a call whose argument has no
-- exact type (an untyped '{}' or NULL, an integer literal where we take
-- float8, a name where we take text) lets PostgreSQL's overload resolution
-- pick the look-alike, and elevated code (SECURITY DEFINER, the worker, the
-- owner's rights in C) would run it as the extension owner.
--
-- test/plant_lookalikes.sql plants, for each function and each argument
-- position, a look-alike taking text or an implicitly cast type there.
-- Then the entry points that run our code with the owner's rights run,
-- with typed arguments of their own.  Nothing may have called a
-- look-alike.  Roles are cluster-wide: they go away with the ROLLBACK.
BEGIN;
SELECT plan(17);
SET client_min_messages = warning;
CREATE ROLE mc_lookalike;
CREATE ROLE mc_lookalike_watch IN ROLE pg_monitor;
SELECT capacity_plan_install(p) FROM unnest(ARRAY['tiers-abc', 'evidence-gates', 'control-plane', 'tenant-archetypes']::text[]) p;
-- data, so the entry points take their branches: a managed table, an
-- EXPLAIN check, two weeks of latency, QPS, pool and plan samples
CREATE TABLE public.mc_lookalike_event (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT capacity_manage('public.mc_lookalike_event'::regclass, 'at'::name, 'day'::text, premake => 2);
SELECT capacity_explain_register('lookalike check'::text, 'SELECT count(*) FROM public.mc_lookalike_event'::text, 3);
SELECT capacity_import_samples(i.name, l.labels,
                               ARRAY(SELECT now() - g * interval '6 hours' FROM generate_series(1, 56) g),
                               ARRAY(SELECT 95 - g FROM generate_series(1, 56) g)::float8[])
  FROM unnest(ARRAY['read_latency_p50_ms', 'read_latency_p95_ms', 'read_latency_p99_ms', 'write_latency_p50_ms',
                    'write_latency_p95_ms', 'write_latency_p99_ms', 'read_qps', 'write_qps', 'cpu_utilization',
                    'recall_p95_ms']::text[]) i(name),
       (VALUES ('{}'::jsonb)) l(labels)
 WHERE EXISTS (SELECT 1 FROM capacity_indicator ci WHERE ci.name = i.name)
UNION ALL
SELECT capacity_import_samples('pool_utilization'::text, '{"role": "app"}'::jsonb,
                               ARRAY(SELECT now() - g * interval '6 hours' FROM generate_series(1, 56) g),
                               ARRAY(SELECT 90 - g / 4 FROM generate_series(1, 56) g)::float8[]);
CREATE SEQUENCE public.mc_lookalike_ran;
GRANT USAGE ON SEQUENCE public.mc_lookalike_ran TO mc_lookalike;
SELECT format('GRANT CREATE ON SCHEMA %I TO mc_lookalike', e.extnamespace::regnamespace)
  FROM pg_extension e WHERE e.extname = 'matter_capacity' \gexec
SET ROLE mc_lookalike;
\ir ../plant_lookalikes.sql
RESET ROLE;
SELECT ok((SELECT count(*) FROM pg_proc WHERE proowner = 'mc_lookalike'::regrole) >= 200,
          'look-alikes of every function of the extension are planted in its schema');

-- the entry points, as the DBA (superuser: the worker's and cron's identity)
-- and as a pg_monitor role, each with typed arguments
SELECT lives_ok($$SELECT capacity_report_html()$$, 'capacity_report_html() renders beside the look-alikes');
SELECT lives_ok($$SELECT capacity_report_html(plan => 'tiers-abc'::text)$$, 'capacity_report_html(plan => tiers-abc)');
SELECT lives_ok($$SELECT count(*) FROM capacity_report()$$, 'capacity_report()');
SELECT lives_ok($$SELECT count(*) FROM capacity_stage()$$, 'capacity_stage()');
SELECT lives_ok($$SELECT count(*) FROM capacity_stages$$, 'the capacity_stages view');
SELECT lives_ok($$SELECT count(*) FROM capacity_plans p, capacity_stage(plan => p.name::text) s$$,
                'capacity_stage(plan => ...) of every installed plan');
SELECT lives_ok($$SELECT count(*) FROM capacity_forecast()$$, 'capacity_forecast()');
SELECT lives_ok($$SELECT count(*) FROM capacity_explain_run()$$, 'capacity_explain_run()');
SELECT lives_ok($$SELECT capacity_plan_import(jsonb_set(capacity_plan_export('tiers-abc'::text), '{name}', '"tiers-copy"'::jsonb))$$,
                'a plan exported and imported under another name');
SELECT lives_ok($$SELECT capacity_sample_now()$$, 'capacity_sample_now()');
SELECT lives_ok($$SELECT count(*) FROM capacity_rollover('public.mc_lookalike_event'::regclass)$$, 'capacity_rollover()');
SET ROLE mc_lookalike_watch;
SELECT lives_ok($$SELECT capacity_report_html(plan => 'evidence-gates'::text)$$, 'a pg_monitor role renders the report');
SELECT lives_ok($$SELECT count(*) FROM capacity_stage(plan => 'tiers-abc'::text)$$, 'a pg_monitor role reads a plan''s stage');
SELECT lives_ok($$SELECT count(*) FROM capacity_trigger_eval(now(), capacity_bindings(), 'tiers-abc'::text)$$,
                'a pg_monitor role evaluates a plan''s triggers');
RESET ROLE;

SELECT is((SELECT last_value FROM public.mc_lookalike_ran WHERE is_called), NULL,
          'no look-alike ran (the server log names any that did)');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'mc_lookalike'), false, 'the planting role is no superuser');
SELECT * FROM finish();
ROLLBACK;

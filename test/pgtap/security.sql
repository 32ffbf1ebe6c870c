-- pgTAP: issue 19, "no path to superuser, no row lost, no stall by another
-- role" (the cases in ../shared/cases/security, one or more tests per
-- case, named after it).  The suite's database is made by the postgres
-- superuser, so capacity_sample_now() and capacity_explain_run() here run
-- exactly as the worker would.  Roles are cluster-wide: they get unique
-- names (mc_sec_*) and go away with the ROLLBACK at the end.
BEGIN;
SELECT plan(53);
SET LOCAL TimeZone = 'UTC';

CREATE ROLE mc_sec_owner;
CREATE ROLE mc_sec_tenant;
CREATE ROLE mc_sec_gone;
CREATE SCHEMA mc_sec AUTHORIZATION mc_sec_owner;
CREATE SCHEMA mc_sec_tenant AUTHORIZATION mc_sec_tenant;
GRANT EXECUTE ON FUNCTION capacity_manage(regclass, name, text, name, integer, integer, interval, text, boolean),
                          capacity_rollover(regclass, timestamptz, boolean),
                          capacity_set_hash_partitions(regclass, integer, timestamptz),
                          capacity_register_probe(text, text, text),
                          capacity_explain_register(text, text, integer, text[]),
                          capacity_record(text, double precision, jsonb, timestamptz)
   TO mc_sec_owner;

-- evidence: who ran the hooks, as which role
CREATE TABLE mc_sec_evidence (who name, superuser boolean, via text);
GRANT INSERT ON mc_sec_evidence TO PUBLIC;
SELECT capacity_register_push('sec_push', 'n', 'pushed by the application');

SET ROLE mc_sec_owner;
-- hooks: an operator on (text, text) and on (timestamptz, timestamptz) in the owner's schema
CREATE FUNCTION mc_sec.eq_hook(a text, b text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.mc_sec_evidence SELECT current_user, r.rolsuper, 'mc_sec.='
      FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user;
    RETURN a OPERATOR(pg_catalog.=) b;
END $$;
CREATE OPERATOR mc_sec.= (LEFTARG = text, RIGHTARG = text, FUNCTION = mc_sec.eq_hook);
CREATE FUNCTION mc_sec.le_hook(a timestamptz, b timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.mc_sec_evidence SELECT current_user, r.rolsuper, 'mc_sec.<='
      FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user;
    RETURN a OPERATOR(pg_catalog.<=) b;
END $$;
CREATE OPERATOR mc_sec.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = mc_sec.le_hook);
CREATE TABLE mc_sec.event (id bigint GENERATED ALWAYS AS IDENTITY, org text NOT NULL,
                           at timestamptz NOT NULL, PRIMARY KEY (id, at, org)) PARTITION BY RANGE (at);

-- ---- case 04: the caller's search_path in the registering calls ------
-- (called directly: pgTAP's own functions would resolve the hostile
-- operator themselves; an error here aborts the file, a failure too)
SET search_path = mc_sec, pg_catalog, public;
SELECT capacity_register_probe('sec_four', 'SELECT 1', 'n');
SELECT capacity_explain_register('sec check four', 'SELECT 1', 0);
SELECT capacity_manage('mc_sec.event', 'at', 'week', 'org', 2, premake => 2);
SELECT count(*) FROM capacity_rollover('mc_sec.event', '2026-11-22 10:00+00');
SELECT capacity_set_hash_partitions('mc_sec.event', 4, '2026-11-22 10:00+00');
SELECT capacity_record('sec_push', 1, '{}', '2026-11-22 10:00+00');
RESET search_path;
RESET ROLE;
SELECT is_empty($$SELECT * FROM mc_sec_evidence$$, '04: no operator of the caller ran inside the extension''s calls');
DELETE FROM capacity_indicator WHERE name = 'sec_four';
SET ROLE mc_sec_owner;

-- ---- case 02: a probe's set_config outlives it -----------------------
SELECT capacity_register_probe('sec_aaa_leak',
    $$SELECT pg_catalog.length(pg_catalog.set_config('search_path', 'mc_sec, pg_catalog', false))$$, 'n');
RESET ROLE;
SET LOCAL search_path = public;
SELECT cmp_ok(capacity_sample_now('2026-11-22 10:00+00'), '>', 0, '02: sampling with a search_path-setting probe');
SELECT is(current_setting('search_path'), 'public', '02: the probe''s search_path did not survive it');
SELECT is_empty($$SELECT * FROM mc_sec_evidence$$, '02: no operator of the prober ran as the sampler');
SELECT is((SELECT value FROM capacity_latest_sample WHERE indicator = 'sec_aaa_leak'), 18::float8,
          '02: the probe itself still ran and was recorded');
RESET search_path;

-- ---- case 03: EXPLAIN checks (a registered one, and a managed table's RLS) ----
SET ROLE mc_sec_tenant;
CREATE TABLE mc_sec_tenant.ledger (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at);
CREATE FUNCTION mc_sec_tenant.leak() RETURNS boolean IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'mc_sec, pg_catalog', false);
    RETURN true;
END $$;
RESET ROLE;
SELECT capacity_manage('mc_sec_tenant.ledger', 'at', 'day', premake => 1);   -- the DBA manages it
SET ROLE mc_sec_tenant;
ALTER TABLE mc_sec_tenant.ledger ENABLE ROW LEVEL SECURITY;
ALTER TABLE mc_sec_tenant.ledger FORCE ROW LEVEL SECURITY;
CREATE POLICY everything ON mc_sec_tenant.ledger USING (mc_sec_tenant.leak());
SET ROLE mc_sec_owner;
CREATE FUNCTION mc_sec.leak() RETURNS integer IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'mc_sec, pg_catalog', false);
    RETURN 1;
END $$;
SELECT capacity_explain_register('sec aaa check', 'SELECT mc_sec.leak()', 0);
RESET ROLE;
SET LOCAL search_path = public;
SELECT is((SELECT count(*)::int FROM capacity_explain_run('2026-11-22 10:00+00') r
            WHERE r.name IN ('sec aaa check', 'mc_sec_tenant.ledger: one day') AND r.passed), 2,
          '03: the leaking checks were run (and pass)');
SELECT is(current_setting('search_path'), 'public', '03: a setting made while planning a check did not survive it');
SELECT is_empty($$SELECT * FROM mc_sec_evidence$$, '03: no operator of a check''s owner ran as the superuser');
RESET search_path;

-- ---- case 06: a probe that swallows its cancel -------------------------
-- Under clock.sh's libfaketime a timer that fires while a backend sleeps
-- reads the real clock, so no timeout fires there: these are skipped then.
\if :{?fake_clock}
\else
SET ROLE mc_sec_owner;
CREATE FUNCTION mc_sec.stubborn() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
BEGIN
    WHILE clock_timestamp() < t0 + interval '4 seconds' LOOP
        BEGIN
            PERFORM pg_sleep(0.05);
        EXCEPTION WHEN query_canceled THEN
            NULL;   -- ignore the probe timeout
        END;
    END LOOP;
    RETURN 1;
END $$;
SELECT capacity_register_probe('sec_stubborn', 'SELECT mc_sec.stubborn()', 'n');
RESET ROLE;
\endif
SET ROLE mc_sec_owner;
-- ---- case 20: a probe returning many rows ----------------------------
SELECT capacity_register_probe('sec_many_rows',
    $$SELECT jsonb_build_object('k', g), g FROM generate_series(1, 100000) g$$, 'n');
-- ---- case 22: probes with side effects --------------------------------
CREATE TABLE mc_sec.side (n int);
CREATE FUNCTION mc_sec.writer() RETURNS integer LANGUAGE sql VOLATILE AS
    $$ INSERT INTO mc_sec.side VALUES (2) RETURNING 2 $$;
SELECT throws_ok($$SELECT capacity_register_probe('sec_p_cte', 'WITH w AS (INSERT INTO mc_sec.side VALUES (1) RETURNING n) SELECT count(*) FROM w')$$,
                 '42809', 'matter_capacity: probe sec_p_cte has a data-modifying WITH (w)',
                 '22: a data-modifying WITH is refused at registration, saying so');
SELECT capacity_register_probe('sec_p_writer', $$SELECT mc_sec.writer()$$);
SELECT capacity_register_probe('sec_p_role', $$SELECT length(set_config('role', 'postgres', false))$$);
SELECT capacity_register_probe('sec_p_advisory', $$SELECT 1 FROM pg_advisory_lock(424242) x$$);
RESET ROLE;
SET LOCAL matter_capacity.probe_timeout = 300;
SELECT set_config('mc.t0', clock_timestamp()::text, true);
SELECT cmp_ok(capacity_sample_now('2026-11-22 10:05+00'), '>', 0, '06/20/22: sampling goes on past the hostile probes');
\if :{?fake_clock}
SELECT skip('no timer fires under libfaketime (clock.sh)', 2);
\else
SELECT cmp_ok(clock_timestamp() - current_setting('mc.t0')::timestamptz, '<', interval '3 seconds',
              '06: a probe catching query_canceled is still stopped at probe_timeout');
SELECT matches((SELECT last_error FROM capacity_indicator_run WHERE indicator = 'sec_stubborn'),
               'timed out after 300 ms', '06: and recorded as timed out');
\endif
SELECT matches((SELECT last_error FROM capacity_indicator_run WHERE indicator = 'sec_many_rows'),
               'more than 1000 rows \(matter_capacity.probe_max_rows\)', '20: a probe over probe_max_rows rows is refused with the reason');
SELECT is((SELECT count(*)::int FROM capacity_latest_sample WHERE indicator = 'sec_many_rows'), 0,
          '20: and none of its series is kept');
SELECT matches((SELECT last_error FROM capacity_indicator_run WHERE indicator = 'sec_p_writer'),
               'read-only transaction', '22: a probe''s volatile function cannot write');
SELECT is_empty($$SELECT * FROM mc_sec.side$$, '22: nothing was written by any probe');
SELECT matches((SELECT last_error FROM capacity_indicator_run WHERE indicator = 'sec_p_role'),
               'cannot set parameter "role"', '22: a probe cannot change role');
SELECT matches((SELECT last_error FROM capacity_indicator_run WHERE indicator = 'sec_p_advisory'),
               'advisory lock \(released\)', '22: a probe keeping a session advisory lock fails');
SELECT is_empty($$SELECT * FROM pg_locks WHERE locktype = 'advisory' AND objid = 424242$$,
                '22: and the lock does not outlive the probe');
SELECT is(current_user::text, 'postgres', '22: the sampler is still itself');
DELETE FROM capacity_indicator WHERE name LIKE 'sec\_%';

-- ---- case 07: a check whose planning sleeps --------------------------
\if :{?fake_clock}
SELECT skip('no timer fires under libfaketime (clock.sh)', 3);
\else
SET ROLE mc_sec_owner;
CREATE TABLE mc_sec.armed (on_ boolean);
INSERT INTO mc_sec.armed VALUES (false);
GRANT SELECT ON mc_sec.armed TO PUBLIC;
CREATE FUNCTION mc_sec.slow_const() RETURNS integer IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT a.on_ FROM mc_sec.armed a) THEN
        PERFORM pg_sleep(10);
    END IF;
    RETURN 1;
END $$;
SELECT capacity_explain_register('sec slow check', 'SELECT mc_sec.slow_const()', 0);
UPDATE mc_sec.armed SET on_ = true;
RESET ROLE;
SELECT set_config('mc.t0', clock_timestamp()::text, true);
SELECT is((SELECT passed FROM capacity_explain_run('2026-11-22 10:00+00') WHERE name = 'sec slow check'), false,
          '07: a check whose planning sleeps fails');
SELECT cmp_ok(clock_timestamp() - current_setting('mc.t0')::timestamptz, '<', interval '3 seconds',
              '07: after probe_timeout, not after its sleep');
SELECT matches((SELECT error FROM capacity_explain_result WHERE name = 'sec slow check' ORDER BY id DESC LIMIT 1),
               'timed out', '07: recorded as timed out');
\endif

-- ---- case 30: a probe whose role was dropped -------------------------
GRANT EXECUTE ON FUNCTION capacity_register_probe(text, text, text) TO mc_sec_gone;
SET ROLE mc_sec_gone;
SELECT capacity_register_probe('sec_orphan', 'SELECT 1');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION capacity_register_probe(text, text, text) FROM mc_sec_gone;
DROP ROLE mc_sec_gone;
SELECT capacity_sample_now('2026-11-22 10:10+00');
SELECT is((SELECT enabled FROM capacity_indicator WHERE name = 'sec_orphan'), false,
          '30: a probe of a dropped role is disabled');
SELECT matches((SELECT last_error FROM capacity_indicator_run WHERE indicator = 'sec_orphan'),
               'no longer exists', '30: with the reason recorded');
SET ROLE mc_sec_owner;
SELECT lives_ok($$SELECT capacity_register_probe('sec_orphan', 'SELECT 2')$$,
                '30: another role may take over the name of a dropped role''s probe');
RESET ROLE;
SELECT is((SELECT enabled::text || ' ' || owner::text FROM capacity_indicator WHERE name = 'sec_orphan'), 'true mc_sec_owner',
          '30: registering it again enables it, as its new owner');

-- ---- case 18: check names taken by another role, or left by a dropped table ----
GRANT USAGE ON SCHEMA mc_sec_tenant TO mc_sec_owner;
SET ROLE mc_sec_owner;
SELECT capacity_explain_register('mc_sec_tenant.orders: one day', 'SELECT 1', 0);
RESET ROLE;
GRANT EXECUTE ON FUNCTION capacity_manage(regclass, name, text, name, integer, integer, interval, text, boolean) TO mc_sec_tenant;
SET ROLE mc_sec_tenant;
CREATE TABLE mc_sec_tenant.orders (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT lives_ok($$SELECT capacity_manage('mc_sec_tenant.orders', 'at', 'day')$$,
                '18: a default check name registered first by another role does not stop capacity_manage');
CREATE TABLE mc_sec_tenant.events (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT capacity_manage('mc_sec_tenant.events', 'at', 'day');
DROP TABLE mc_sec_tenant.events;
CREATE TABLE mc_sec_tenant.events (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT lives_ok($$SELECT capacity_manage('mc_sec_tenant.events', 'at', 'day')$$,
                '18: a dropped and re-created table is managed again');
RESET ROLE;
SELECT is((SELECT owner::text FROM capacity_explain_check WHERE name = 'mc_sec_tenant.orders: one day'), 'mc_sec_owner',
          '18: the other role''s check is left alone');
SELECT is((SELECT count(*)::int FROM capacity_explain_check WHERE table_name = 'mc_sec_tenant.orders'::regclass), 1,
          '18: the table still has its default check, under another name');

-- ---- case 29: pg_monitor reads every view and function granted to it ----
CREATE ROLE mc_sec_monitor IN ROLE pg_monitor;
SET ROLE mc_sec_monitor;
SELECT lives_ok($$SELECT count(*) FROM capacity_policies$$, '29: pg_monitor reads capacity_policies');
SELECT lives_ok($$SELECT count(*) FROM capacity_partitions$$, '29: pg_monitor reads capacity_partitions');
SELECT lives_ok($$SELECT count(*) FROM capacity_rollover_log$$, '29: pg_monitor reads capacity_rollover_log');
SELECT lives_ok($$SELECT count(*) FROM capacity_latest$$, '29: pg_monitor reads capacity_latest');
SELECT lives_ok($$SELECT count(*) FROM capacity_indicator_status$$, '29: pg_monitor reads capacity_indicator_status');
SELECT lives_ok($$SELECT count(*) FROM capacity_explain_result$$, '29: pg_monitor reads capacity_explain_result');
SELECT lives_ok($$SELECT count(*) FROM capacity_conversions$$, '29: pg_monitor reads capacity_conversions');
SELECT lives_ok($$SELECT count(*) FROM capacity_decisions$$, '29: pg_monitor reads capacity_decisions');
SELECT lives_ok($$SELECT count(*) FROM capacity_stages$$, '29: pg_monitor reads capacity_stages');
SELECT lives_ok($$SELECT count(*) FROM capacity_trigger_status$$, '29: pg_monitor reads capacity_trigger_status');
SELECT lives_ok($$SELECT count(*) FROM capacity_stage('2026-11-22 10:00+00')$$, '29: pg_monitor calls capacity_stage()');
SELECT lives_ok($$SELECT count(*) FROM capacity_report('2026-11-22 10:00+00')$$, '29: pg_monitor calls capacity_report()');
SELECT lives_ok($$SELECT count(*) FROM capacity_forecast('2026-11-22 10:00+00')$$, '29: pg_monitor calls capacity_forecast()');
RESET ROLE;

-- ---- case 19: a policy's size is bounded ------------------------------
SET ROLE mc_sec_owner;
CREATE TABLE mc_sec.big (at timestamptz NOT NULL, org int NOT NULL) PARTITION BY RANGE (at);
SELECT throws_like($$SELECT capacity_manage('mc_sec.big', 'at', 'day', 'org', 1024, premake => 1000)$$,
                   '%more than matter_capacity.max_leaves_per_policy%',
                   '19: premake 1000 x 1024 hash partitions is refused');
SELECT lives_ok($$SELECT capacity_manage('mc_sec.big', 'at', 'day', 'org', 16, premake => 4)$$,
                '19: an ordinary policy is accepted');
RESET ROLE;
SET LOCAL matter_capacity.max_leaves_per_policy = 50;
SET ROLE mc_sec_owner;
SELECT throws_like($$SELECT capacity_set_hash_partitions('mc_sec.big', 16, '2026-11-22 10:00+00')$$,
                   '%more than matter_capacity.max_leaves_per_policy%',
                   '19: so is a split past the bound');
RESET ROLE;
RESET matter_capacity.max_leaves_per_policy;

-- ---- case 21: pushed labels are bounded in size and in time ----------
SELECT capacity_register_push('sec_push', 'n', 'pushed by the application');
GRANT EXECUTE ON FUNCTION capacity_record(text, double precision, jsonb, timestamptz) TO mc_sec_tenant;
SET ROLE mc_sec_tenant;
SELECT throws_ok($$SELECT capacity_record('sec_push', 1, jsonb_build_object('k', repeat('x', 1000000)), '2026-11-22 10:00+00')$$,
                 '54000', NULL, '21: a 1 MB label is refused with a clear error, not a raw index size error');
SELECT capacity_record('sec_push', g, jsonb_build_object('endpoint', 'e' || g), '2026-11-22 10:00+00')
  FROM generate_series(1, 50) g;
RESET ROLE;
SELECT capacity_sample_now('2026-11-22 10:20+00');
SELECT is((SELECT count(*)::int FROM capacity_latest_sample WHERE indicator = 'sec_push' AND labels ? 'endpoint'), 50,
          '21: pushed series are kept while fresh');
SELECT capacity_sample_now(timestamptz '2026-11-22 10:20+00' + interval '800 days');
SELECT is((SELECT count(*)::int FROM capacity_latest_sample WHERE indicator = 'sec_push'), 0,
          '21: series not seen for sample_retention_days expire from the newest-value table');

-- ---- item 2: a trigger fired by the rescue out of the default partition ----
SET ROLE mc_sec_owner;
CREATE TABLE mc_sec.rescued (at timestamptz NOT NULL, note text) PARTITION BY RANGE (at);
SELECT capacity_manage('mc_sec.rescued', 'at', 'day', premake => 1);
SELECT count(*) FROM capacity_rollover('mc_sec.rescued', '2026-11-22 10:00+00');
INSERT INTO mc_sec.rescued VALUES ('2026-12-01 10:00+00', 'waits in the default partition');
CREATE FUNCTION mc_sec.on_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'mc_sec, pg_catalog', false);
    INSERT INTO public.mc_sec_evidence SELECT current_user, r.rolsuper, 'rescue trigger'
      FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user;
    RETURN OLD;
END $$;
-- (the moved rows are deleted from the default partition: a row trigger of the parent fires there)
CREATE TRIGGER on_move BEFORE DELETE ON mc_sec.rescued FOR EACH ROW EXECUTE FUNCTION mc_sec.on_move();
RESET ROLE;
SET LOCAL search_path = public;
SELECT is((SELECT count(*)::int FROM capacity_rollover('mc_sec.rescued', '2026-11-30 10:00+00') WHERE action = 'moved_rows'), 1,
          '2: a superuser''s rollover rescues the row (the owner''s trigger fires)');
SELECT is(current_setting('search_path'), 'public', '2: the trigger''s set_config did not survive the rollover');
SELECT is((SELECT string_agg(who::text || ' superuser=' || superuser::text, ', ') FROM mc_sec_evidence WHERE via = 'rescue trigger'),
          'mc_sec_owner superuser=false', '2: and it ran as the table owner, not as the superuser');
RESET search_path;

SELECT * FROM finish();
ROLLBACK;

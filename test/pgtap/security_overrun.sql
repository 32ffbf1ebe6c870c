-- pgTAP: issue 19, "a probe that overruns its timeout by more than 1 s is
-- disabled" (src/sampler.c, after run_probe).  The cancel of
-- matter_capacity.probe_timeout is re-armed after every subtransaction the
-- probe rolls back, so catching query_canceled in PL/pgSQL never overruns
-- (security.sql case 06); what overruns is one long computation that
-- reaches no interrupt check: md5() of two 250 MB rpad()s takes about 3 s here
-- and is cancelled only when it returns.  Under clock.sh's libfaketime no
-- timer fires, so the checks are skipped there.
BEGIN;
SELECT plan(5);
SET LOCAL TimeZone = 'UTC';
CREATE ROLE mc_ovr_owner;
GRANT EXECUTE ON FUNCTION capacity_register_probe(text, text, text) TO mc_ovr_owner;
SET ROLE mc_ovr_owner;
SELECT capacity_register_probe('ovr_slow', $$SELECT length(md5(rpad('', 250000000, 'x')) || md5(rpad('', 250000000, 'y')))$$, 'n');
RESET ROLE;
SET LOCAL matter_capacity.probe_timeout = 100;
\if :{?fake_clock}
SELECT skip('no timer fires under libfaketime (clock.sh)', 5);
\else
SELECT set_config('mc.t0', clock_timestamp()::text, true);
SELECT lives_ok($$SELECT capacity_sample_now('2026-11-22 10:05+00')$$,
                'overrun: sampling goes on past a probe that overran its timeout');
SELECT cmp_ok(clock_timestamp() - current_setting('mc.t0')::timestamptz, '>', interval '1100 ms',
              'overrun: the probe really ran past probe_timeout + 1 s (no interrupt check inside md5)');
SELECT is((SELECT enabled FROM capacity_indicator WHERE name = 'ovr_slow'), false,
          'overrun: a probe that ran past probe_timeout + 1 s is disabled');
SELECT matches((SELECT last_error FROM capacity_indicator_run WHERE indicator = 'ovr_slow'),
               '^disabled: ran [0-9]+ ms, past matter_capacity.probe_timeout \(100 ms\); register it again to re-enable it$',
               'overrun: the reason is recorded');
-- the next sampling does not run it (quick, and its run record is unchanged)
SELECT set_config('mc.t1', clock_timestamp()::text, true);
SELECT capacity_sample_now('2026-11-22 10:06+00');
SELECT ok(clock_timestamp() - current_setting('mc.t1')::timestamptz < interval '1 second'
          AND (SELECT last_run FROM capacity_indicator_run WHERE indicator = 'ovr_slow') = '2026-11-22 10:05+00',
          'overrun: the next sampling does not run the disabled probe');
\endif
SELECT * FROM finish();
ROLLBACK;

-- Preset matter-six-stage (the default ladder) evaluated as a plan: its
-- transitions are sustained windows (every sample of the trigger's window
-- breaches), so "N consecutive" is the window: a move fires when the
-- whole window breaches and not when one sample in it is under or when
-- less than the window has data (insufficient, review, never stay); the
-- ladder has no exit rules, so it never suggests rollback; a trend within
-- the horizon is "plan"; a declared stage the database contradicts is
-- review.  Samples in 2031, read at 2031-03-01 12:00 UTC.
SET search_path = pl, public;
SET TimeZone = 'UTC';
SELECT capacity_set_stage(1, 'six-stage plan tests');
CREATE FUNCTION pl.sustained(ind text, v float8, from_ts timestamptz, to_ts timestamptz) RETURNS void
LANGUAGE sql AS $$
    DELETE FROM capacity_sample WHERE indicator = ind AND sampled_at >= from_ts AND sampled_at <= to_ts;
    INSERT INTO capacity_sample SELECT ind, '{}', t, v FROM generate_series(from_ts, to_ts, '5 minutes') t;
    INSERT INTO capacity_latest_sample VALUES (ind, '{}', to_ts, v)
    ON CONFLICT (indicator, labels) DO UPDATE SET sampled_at = EXCLUDED.sampled_at, value = EXCLUDED.value;
$$;
CREATE FUNCTION pl.ladder(at timestamptz DEFAULT '2031-03-01 12:00+00')
RETURNS TABLE(cur integer, rec integer, decision text, firing text[])
LANGUAGE sql AS $$
    SELECT current_stage, recommended_stage, decision, firing FROM capacity_stage(at, plan => 'matter-six-stage')
$$;
-- nothing measured: stage 2's triggers lack data -> review
SELECT * FROM ladder();
-- read QPS above 500 over the whole hour before as_of -> promote to 2
SELECT sustained('read_qps', 650, '2031-03-01 10:55+00', '2031-03-01 12:00+00');
SELECT * FROM ladder();
SELECT status, value, samples FROM capacity_trigger_eval('2031-03-01 12:00+00', capacity_bindings())
 WHERE trigger_name = 'read_qps_sustained';
-- one sample in the hour under the threshold -> no move
UPDATE capacity_sample SET value = 450 WHERE indicator = 'read_qps' AND sampled_at = '2031-03-01 11:30+00';
SELECT * FROM ladder();
-- 40 minutes of data only (less than the window) -> not firing
DELETE FROM capacity_sample WHERE indicator = 'read_qps' AND sampled_at < '2031-03-01 11:20+00';
UPDATE capacity_sample SET value = 650 WHERE indicator = 'read_qps' AND sampled_at = '2031-03-01 11:30+00';
SELECT status, samples FROM capacity_trigger_eval('2031-03-01 12:00+00', capacity_bindings())
 WHERE trigger_name = 'read_qps_sustained';
SELECT decision <> 'stay' AS never_ok FROM ladder();
-- at stage 2 with everything quiet: no rollback (the ladder has no exits),
-- and no streaming standby contradicts the declared stage -> review
DELETE FROM capacity_sample WHERE indicator = 'read_qps' AND sampled_at >= '2031-01-01';
SELECT capacity_set_stage(2, 'replicas live');
SELECT * FROM ladder();
SELECT evidence -> 'contradictions' AS contradictions FROM capacity_stage('2031-03-01 12:00+00', plan => 'matter-six-stage');
SELECT count(*) AS rollbacks FROM ladder() WHERE decision = 'rollback';
SELECT capacity_set_stage(1, 'back to stage 1');
DELETE FROM capacity_latest_sample WHERE sampled_at >= '2031-01-01';

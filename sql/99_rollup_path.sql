-- One rollup path (src/rollup.c).  Which indicators keep a daily p95 is
-- capacity_daily_p95, which the plans piece keeps in step with the plan
-- conditions (a statement trigger on capacity_plan_condition): the rollup
-- reads no plan.  The import writes every sample through the write path
-- and rolls its hours up through the same rollup; samples older than the
-- raw retention leave no raw sample behind.
SET TimeZone = 'UTC';
SELECT capacity_register_push('rp_latency_ms', 'ms');
CREATE TEMP TABLE before_p95 AS SELECT indicator FROM capacity_daily_p95;
CREATE FUNCTION pg_temp.p95_added() RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(indicator ORDER BY indicator), '{}') FROM capacity_daily_p95
     WHERE indicator NOT IN (SELECT indicator FROM before_p95)
$$;
CREATE FUNCTION pg_temp.doc(daily text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('name', 'rp-plan', 'tiers', jsonb_build_array(
        jsonb_build_object('name', 'shared'),
        jsonb_build_object('name', 'dedicated', 'from', 'shared', 'enter', jsonb_build_object('any', jsonb_build_array(
            jsonb_build_object('name', 'slow', 'indicator', 'rp_latency_ms', 'comparator', '>', 'threshold', 250,
                               'days', 3, 'daily', daily))))))
$$;

-- a plan reading rp_latency_ms by daily p95 adds it; replaced by one
-- reading the daily max, it goes; back, then the plan removed: it goes
SELECT capacity_plan_import(pg_temp.doc('p95')) AS imported, pg_temp.p95_added() AS p95_indicators;
SELECT capacity_plan_import(pg_temp.doc('max')) AS imported, pg_temp.p95_added() AS p95_indicators;
SELECT capacity_plan_import(pg_temp.doc('p95')) AS imported, pg_temp.p95_added() AS p95_indicators;
DELETE FROM capacity_plan WHERE name = 'rp-plan';
SELECT pg_temp.p95_added() AS p95_indicators_after_removal;
-- the set is exactly the indicators conditions read by p95
SELECT (SELECT array_agg(indicator ORDER BY indicator) FROM capacity_daily_p95)
       IS NOT DISTINCT FROM
       (SELECT array_agg(DISTINCT indicator ORDER BY indicator) FROM capacity_plan_condition WHERE daily = 'p95') AS in_step;

-- the import, with the plan back (rp_latency_ms keeps a daily p95):
-- 3 days of 10-minute values older than the raw retention at as_of, and
-- 2 days within it
SELECT capacity_plan_import(pg_temp.doc('p95')) AS imported;
CREATE TEMP TABLE rp_src AS
SELECT 'rp_latency_ms'::text AS indicator, '{"svc": "api"}'::jsonb AS labels, t AS sampled_at,
       (100 + (extract(epoch FROM t)::bigint / 600) % 37)::float8 AS value
  FROM generate_series(timestamptz '2032-03-01', '2032-03-03 23:50', '10 minutes') t
UNION ALL
SELECT 'rp_latency_ms', '{"svc": "api"}', t, (200 + (extract(epoch FROM t)::bigint / 600) % 41)::float8
  FROM generate_series(timestamptz '2032-05-20', '2032-05-21 23:50', '10 minutes') t;
SELECT capacity_import_samples('rp_latency_ms', '{"svc": "api"}',
       ARRAY(SELECT sampled_at FROM rp_src ORDER BY sampled_at), ARRAY(SELECT value FROM rp_src ORDER BY sampled_at),
       as_of => '2032-06-01 00:00+00') AS loaded;
-- raw samples only within the raw retention (35 days before as_of)
SELECT count(*) FILTER (WHERE sampled_at < '2032-04-27') AS raw_old, count(*) AS raw
  FROM capacity_sample WHERE indicator = 'rp_latency_ms';
-- every hour, old or not, is what the rollup makes of the imported values
SELECT count(*) AS hours,
       count(*) FILTER (WHERE h.min = x.min AND h.max = x.max AND h.last = x.last AND h.count = x.count
                          AND abs(h.avg - x.avg) < 1e-9) AS as_imported
  FROM capacity_sample_hourly h
  JOIN (SELECT date_bin('1 hour', sampled_at, '2000-01-01') AS hour, min(value) AS min, max(value) AS max,
               avg(value) AS avg, (array_agg(value ORDER BY sampled_at DESC))[1] AS last, count(*) AS count
          FROM rp_src GROUP BY 1) x USING (hour)
 WHERE h.indicator = 'rp_latency_ms';
-- days: the old ones without p95 (no raw samples of them remain), the
-- raw ones with the exact p95 of their samples when complete (before the
-- day of the last sample rolled up, as for any roll-up: May 21 has none)
SELECT d.day, d.count, d.min, d.max, d.p95,
       d.p95 = (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY value) FROM rp_src
                 WHERE sampled_at >= d.day AND sampled_at < d.day + interval '1 day') AS exact_p95
  FROM capacity_sample_daily d WHERE d.indicator = 'rp_latency_ms' ORDER BY d.day;

-- a UTC day is 24 hours in any session: New York's clocks go forward on
-- 2032-03-14, and the day's rollup still has all 24 hours
SET TimeZone = 'America/New_York';
INSERT INTO capacity_sample_hourly
SELECT 'rp_latency_ms', '{"svc": "dst"}', h, 1, 2, 1.5, 2, 10
  FROM generate_series(timestamptz '2032-03-14 00:00+00', '2032-03-14 23:00+00', '1 hour') h;
SELECT capacity_roll_up_days('2032-03-14 00:00+00', '2032-03-15 12:00+00') AS days_rolled;
SELECT count AS samples_of_24_hours FROM capacity_sample_daily
 WHERE indicator = 'rp_latency_ms' AND labels = '{"svc": "dst"}' AND day = '2032-03-14 00:00+00';
SET TimeZone = 'UTC';

-- the SQL forms refuse a range that is not one, naming it
SELECT capacity_roll_up_days('2032-03-02', '2032-03-01');
SELECT capacity_roll_up_days(NULL, '2032-03-01');
SELECT capacity_roll_up_hours('2032-03-02', 'infinity');

-- leave nothing for later tests
DELETE FROM capacity_plan WHERE name = 'rp-plan';
DELETE FROM capacity_sample WHERE indicator = 'rp_latency_ms';
DELETE FROM capacity_sample_hourly WHERE indicator = 'rp_latency_ms';
DELETE FROM capacity_sample_daily WHERE indicator = 'rp_latency_ms';
DELETE FROM capacity_latest_sample WHERE indicator = 'rp_latency_ms';
DELETE FROM capacity_indicator WHERE name = 'rp_latency_ms';

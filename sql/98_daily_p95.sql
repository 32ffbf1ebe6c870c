-- A day's p95 in the daily rollup (capacity_roll_up_days): the exact p95
-- of the day's raw samples, kept for the indicators an N-day plan condition
-- reads by p95 (cpu_utilization: tiers-abc's A.cpu_p95 and B.cpu_p95), on
-- complete days only, carried over while the day's rollup is unchanged.
-- An N-day condition reads it there and gives the same rows as from the
-- raw samples.  Uses the helpers of 90_plans (schema pl).
SET search_path = pl, public;
SET TimeZone = 'UTC';
SELECT clear();
-- Jan 8-10: every 15 minutes, two hot hours (18:00, 19:00: a twelfth of
-- the day, so the p95 falls among them) each day; one sample of Jan 11
INSERT INTO capacity_sample
SELECT 'cpu_utilization', '{}', t,
       40 + 30 * (extract(hour FROM t) IN (18, 19))::integer + extract(minute FROM t) / 15 + extract(day FROM t)
  FROM generate_series(timestamptz '2030-01-08', '2030-01-11 00:00', '15 minutes') t;
INSERT INTO capacity_latest_sample VALUES ('cpu_utilization', '{}', '2030-01-11 00:00', 51)
ON CONFLICT (indicator, labels) DO UPDATE SET sampled_at = EXCLUDED.sampled_at, value = EXCLUDED.value;
-- no rollup yet: read from the raw samples
CREATE TEMP TABLE from_raw AS SELECT * FROM cond('tiers-abc', 'B.cpu_p95', '2030-01-11 12:00+00');
SELECT * FROM from_raw;

-- the sampler's path: hourly rollups, then daily ones, rolled up at 00:10 on Jan 11
SELECT capacity_roll_up_hours('2030-01-08', '2030-01-11 00:10') > 0 AS hours_rolled;
SELECT capacity_roll_up_days('2030-01-08', '2030-01-11 00:10') > 0 AS days_rolled;
-- complete days carry the exact p95 of their raw samples; Jan 11 (begun) none
CREATE FUNCTION pl.raw_p95(ind text, d timestamptz) RETURNS float8 LANGUAGE sql AS $$
    SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY s.value) FROM capacity_sample s
     WHERE s.indicator = ind AND s.sampled_at >= d AND s.sampled_at < d + interval '1 day'
$$;
SELECT d.day, d.count, d.p95, d.p95 = raw_p95(d.indicator, d.day) AS exact
  FROM capacity_sample_daily d WHERE d.indicator = 'cpu_utilization' AND d.day >= '2030-01-08' AND d.day < '2030-02-01' ORDER BY d.day;
-- the condition reads the rollups: the same rows as from the raw samples
SELECT (SELECT array_agg(r::text) FROM from_raw r) = (SELECT array_agg(c::text) FROM cond('tiers-abc', 'B.cpu_p95', '2030-01-11 12:00+00') c)
       AS same_as_raw;

-- raw values changed behind the rollups' back (same count, hourly rollups
-- not redone): the day's rollup is unchanged, so its p95 is carried over
-- when the day is rolled up again, as its avg, min and max are
UPDATE capacity_sample SET value = value + 0.5
 WHERE indicator = 'cpu_utilization' AND sampled_at >= '2030-01-09' AND sampled_at < '2030-01-10' AND extract(hour FROM sampled_at) = 18;
SELECT capacity_roll_up_days('2030-01-09', '2030-01-11 00:10') > 0 AS days_rolled;
SELECT d.day, d.p95, d.p95 = raw_p95(d.indicator, d.day) AS exact
  FROM capacity_sample_daily d WHERE d.indicator = 'cpu_utilization' AND d.day = '2030-01-09';
-- the hours rolled up again (the rollup changes): the p95 is computed anew
SELECT capacity_roll_up_hours('2030-01-09', '2030-01-09 23:59') > 0 AS hours_rolled;
SELECT capacity_roll_up_days('2030-01-09', '2030-01-11 00:10') > 0 AS days_rolled;
SELECT d.day, d.p95, d.p95 = raw_p95(d.indicator, d.day) AS exact
  FROM capacity_sample_daily d WHERE d.indicator = 'cpu_utilization' AND d.day = '2030-01-09';

-- a late value re-rolls its hour and its own day only (as capacity_record
-- does): the day is not complete as of that roll-up, so it keeps no p95 and
-- the condition reads it from the raw samples, exact either way
INSERT INTO capacity_sample VALUES ('cpu_utilization', '{}', '2030-01-10 18:07', 95);
SELECT capacity_roll_up_hours('2030-01-10 18:00', '2030-01-10 18:59:59') > 0 AS hours_rolled;
SELECT capacity_roll_up_days('2030-01-10 18:07', '2030-01-10 18:07') > 0 AS days_rolled;
SELECT d.day, d.count, d.p95 FROM capacity_sample_daily d WHERE d.indicator = 'cpu_utilization' AND d.day = '2030-01-10';
SELECT c.value = raw_p95('cpu_utilization', '2030-01-10') AS value_is_raw_p95, c.status
  FROM cond('tiers-abc', 'B.cpu_p95', '2030-01-11 12:00+00') c;

-- an indicator no condition reads by p95 keeps none
SELECT days('write_latency_p95_ms', 150, '2030-01-08', '2030-01-10');
SELECT capacity_roll_up_hours('2030-01-08', '2030-01-11 00:10') > 0 AS hours_rolled;
SELECT capacity_roll_up_days('2030-01-08', '2030-01-11 00:10') > 0 AS days_rolled;
SELECT count(*) AS days, count(d.p95) AS with_p95
  FROM capacity_sample_daily d WHERE d.indicator = 'write_latency_p95_ms' AND d.day >= '2030-01-08' AND d.day < '2030-02-01';

SELECT clear();
DELETE FROM capacity_sample_hourly WHERE hour >= '2030-01-01' AND hour < '2030-02-01';
DELETE FROM capacity_sample_daily WHERE day >= '2030-01-01' AND day < '2030-02-01';
DROP FUNCTION pl.raw_p95(text, timestamptz);

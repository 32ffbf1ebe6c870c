-- Forecasting: eta, band and status of each trigger from synthetic hourly
-- rollups, read with as_of = 2030-03-01 00:00 UTC (lookback: the 30 days
-- 2030-01-30 .. 2030-02-28).
CREATE SCHEMA fc;
SET search_path = fc, public;
SET TimeZone = 'UTC';
SET IntervalStyle = 'postgres';
SET DateStyle = 'ISO';
-- start from stage 1 with nothing declared (earlier tests declared flags)
SELECT capacity_set_stage(1, 'forecast tests');
SELECT count(capacity_declare(flag, 'forecast tests', false)) FROM capacity_declaration WHERE active;
-- hourly rollups of one series: value = f(d), d = days before as_of
-- (fractional, at the end of each hour), and the daily rollups made from
-- them as the sampler makes them
-- after hourly history was loaded or corrected
CREATE FUNCTION fc.reroll() RETURNS void LANGUAGE sql AS $$
    SELECT capacity_roll_up_days('2030-01-01', '2030-03-01');
$$;
CREATE FUNCTION fc.hours(ind text, lbl jsonb, ndays int, f text, as_of timestamptz DEFAULT '2030-03-01 00:00+00')
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM capacity_sample_hourly WHERE indicator = ind AND labels = lbl;
    EXECUTE format($q$
        INSERT INTO capacity_sample_hourly (indicator, labels, hour, min, max, avg, last, count)
        SELECT %L, %L::jsonb, h, v, v, v, v, 60
          FROM (SELECT h, (SELECT %s FROM (SELECT extract(epoch FROM %L::timestamptz - h - interval '1 hour') / 86400 AS d) x) AS v
                  FROM generate_series(%L::timestamptz - make_interval(days => %s), %L::timestamptz - interval '1 hour',
                                       interval '1 hour') h) s$q$,
        ind, lbl, f, as_of, as_of, ndays, as_of);
    PERFORM reroll();
END $$;
-- the newest raw sample of a series (what the sampler writes each minute)
CREATE FUNCTION fc.now_sample(ind text, lbl jsonb, v float8, at timestamptz DEFAULT '2030-03-01 00:00+00')
RETURNS void LANGUAGE sql AS $$
    DELETE FROM capacity_sample WHERE indicator = ind AND labels = lbl AND sampled_at >= '2030-01-01';
    INSERT INTO capacity_sample VALUES (ind, lbl, at, v);
    INSERT INTO capacity_latest_sample VALUES (ind, lbl, at, v)
    ON CONFLICT (indicator, labels) DO UPDATE SET sampled_at = EXCLUDED.sampled_at, value = EXCLUDED.value;
$$;
CREATE FUNCTION fc.fc(name text, at timestamptz DEFAULT '2030-03-01 00:00+00', horizon interval DEFAULT '6 months')
RETURNS TABLE(status text, method text, current_value float8, trend_per_day float8, growth_pct numeric,
              days_left numeric, earliest date, latest date, days_of_data int, note text)
LANGUAGE sql AS $$
    SELECT status, method, round(current_value::numeric, 3)::float8, round(trend_per_day::numeric, 3)::float8,
           round(daily_growth_pct::numeric, 2), days_left, eta_earliest::date, eta_latest::date, days_of_data, note
      FROM capacity_forecast(at, horizon) WHERE trigger_name = name
$$;
CREATE TABLE fc."Event" (id bigint, "createdAt" timestamptz);
CREATE TABLE fc."AuditEntry" (id bigint, "createdAt" timestamptz);

-- the fit itself: an exact line and an exact 3 %/day compounding series
SELECT points, method, level, slope, slope_low, slope_high, days, verdict
  FROM capacity_fit_trend(ARRAY[-6,-5,-4,-3,-2,-1,0], ARRAY[34,35,36,37,38,39,40], 100);
SELECT method, round(level::numeric, 3) AS level, round((100 * (exp(slope) - 1))::numeric, 3) AS pct_per_day,
       round(days::numeric, 2) AS days, verdict
  FROM capacity_fit_trend(ARRAY(SELECT -d::float8 FROM generate_series(29, 0, -1) d),
                          ARRAY(SELECT 500 * 1.03 ^ (-d) FROM generate_series(29, 0, -1) d), 1000);
-- '<' looks for a falling series; the anchor replaces the fitted level
SELECT method, days, verdict FROM capacity_fit_trend('{-3,-2,-1,0}', '{10,9,8,7}', 2, '<', NULL, 4);
SELECT days, verdict FROM capacity_fit_trend('{-3,-2,-1,0}', '{10,9,8,7}', 2, '<', 5, 4);

-- nothing measured: every trigger says so, none is "no trend"
SELECT DISTINCT status FROM capacity_forecast('2030-03-01 00:00+00') WHERE trigger_name <> 'partition_runway';

-- Event rows: 40M now, 1M rows/day inserted for 30 days -> 100M in 60 days
SELECT hours('table_rows_inserted', '{"table": "fc.\"Event\""}', 30, '1e9 - d * 1e6');
SELECT hours('table_rows', '{"table": "fc.\"Event\""}', 30, '40e6 - d * 1e6');
SELECT now_sample('table_rows', '{"table": "fc.\"Event\""}', 40e6);
SELECT * FROM fc('event_rows');
-- without the insert counter the row counts themselves give the same answer
DELETE FROM capacity_sample_hourly WHERE indicator = 'table_rows_inserted';
SELECT reroll();
SELECT status, method, days_left, note FROM fc('event_rows');
SELECT hours('table_rows_inserted', '{"table": "fc.\"Event\""}', 30, '1e9 - d * 1e6');
-- a dip in the row counts (an ANALYZE reports rows late) barely moves the eta
UPDATE capacity_sample_hourly SET last = last - 5e6
 WHERE indicator = 'table_rows' AND hour BETWEEN '2030-02-10' AND '2030-02-12';
SELECT reroll();
SELECT status, days_left FROM fc('event_rows');
-- a counter reset (server restart) in the middle is stepped over
UPDATE capacity_sample_hourly SET last = last - 986e6, min = min - 986e6, max = max - 986e6, avg = avg - 986e6
 WHERE indicator = 'table_rows_inserted' AND hour >= '2030-02-15';
SELECT reroll();
SELECT status, days_left, days_of_data FROM fc('event_rows');
-- retention removes as much as the application adds: 1M rows a day are
-- inserted through each day and the oldest day is dropped at midnight, so
-- the count goes 6M .. 7M every day.  The forecast follows the net change:
-- event_rows is not forecast to fire, and capacity_stage() plans nothing
-- for it (the insert counter alone would forecast 100M in 94 days)
SELECT hours('table_rows', '{"table": "fc.\"Event\""}', 30, '6e6 + 1e6 * (1 - (d - floor(d)))');
SELECT now_sample('table_rows', '{"table": "fc.\"Event\""}', 6e6);
SELECT hours('table_rows_inserted', '{"table": "fc.\"Event\""}', 30, '1e9 - d * 1e6');
SELECT status, method, current_value, trend_per_day, days_left, note FROM fc('event_rows');
SELECT decision, coalesce(jsonb_path_query_array(evidence, '$.forecasts[*].trigger'), '[]') AS forecasts
  FROM capacity_stage('2030-03-01 00:00+00', '6 months');
-- stale statistics: a row count that did not move through its last three
-- days (sampled all day) while 1M rows a day were inserted is not being
-- refreshed; the current count moved back by the inserts is the evidence
SELECT hours('table_rows', '{"table": "fc.\"Event\""}', 30, 'CASE WHEN d < 4 THEN 7e6 ELSE 6e6 + 1e6 * (1 - (d - floor(d))) END');
SELECT now_sample('table_rows', '{"table": "fc.\"Event\""}', 7e6);
SELECT status, method, current_value, trend_per_day, days_left, note FROM fc('event_rows');
-- back to the growing table of the tests below
SELECT hours('table_rows', '{"table": "fc.\"Event\""}', 30, '40e6 - d * 1e6');
SELECT now_sample('table_rows', '{"table": "fc.\"Event\""}', 40e6);

-- the growth leading indicator: 30M rows per 30 days is past 5M already;
-- its 30-day average follows the daily rate by half a window
SELECT status, method, current_value, days_left, note FROM fc('event_growth');

-- multiplicative: webhook deliveries 500k/day growing 3 %/day cross 1M in
-- ln 2 / ln 1.03 = 23.4 days
SELECT hours('webhook_deliveries_per_day', '{}', 30, '500000 * 1.03 ^ (-d)');
SELECT status, method, growth_pct, abs(days_left - 23.4) <= 1 AS eta_within_a_day,
       earliest <= latest AS band_ordered FROM fc('webhook_deliveries');
-- compounding 2 %/day under +-4 % day-to-day noise (1M in 37.6 days if it
-- goes on compounding): the data barely tell the models apart, so the band
-- spans the crossing dates of both
SELECT hours('webhook_deliveries_per_day', '{}', 30, '450000 * 1.02 ^ (-d) * (1 + 0.04 * sin(floor(d) * 5.1))');
SELECT status, method, days_left, earliest, latest, note FROM fc('webhook_deliveries');
-- the same series growing linearly is fitted linearly: +10k/day from 500k -> 50 days
SELECT hours('webhook_deliveries_per_day', '{}', 30, '500000 - d * 10000');
SELECT status, method, trend_per_day, abs(days_left - 50) <= 1 AS eta_within_a_day FROM fc('webhook_deliveries');
CREATE TEMP TABLE no_spike AS SELECT days_left FROM fc('webhook_deliveries');
-- one huge spike (x100 for an hour) moves the eta by a few percent at most
UPDATE capacity_sample_hourly SET max = 100 * max, avg = 100 * avg, last = 100 * last
 WHERE indicator = 'webhook_deliveries_per_day' AND hour = '2030-02-20 13:00+00';
SELECT reroll();
SELECT status, method, abs(f.days_left - n.days_left) / n.days_left < 0.05 AS eta_moved_under_5pct
  FROM fc('webhook_deliveries') f, no_spike n;

-- flat with noise, and falling: no trend
-- (noise differs from day to day: each day's best hour is what is fitted)
SELECT hours('read_qps', '{}', 30, '300 + 60 * sin(floor(d) * 7.3) + 40 * cos(floor(d) * 19.1)');
SELECT status, note FROM fc('read_qps_sustained');
SELECT hours('read_qps', '{}', 30, '300 + 5 * d');
SELECT status, note FROM fc('read_qps_sustained');
-- rising, but buried in noise
SELECT hours('read_qps', '{}', 30, '300 - 0.5 * d + 150 * sin(floor(d) * 7.3)');
SELECT status, note FROM fc('read_qps_sustained');
-- a sustained trigger is fitted on each day's best hour: CPU rising 1 %/day
-- from 35 % now crosses 50 % in about 15 days
SELECT hours('cpu_utilization', '{}', 30, '35 - d');
SELECT status, method, round(days_left) AS days_left FROM fc('primary_cpu_sustained');
-- a falling trigger ('<'): cache hit ratio sliding to 80 % of its target
SELECT hours('cache_hit_ratio', '{}', 30, '0.9 + d * 0.002');
SELECT status, method, trend_per_day, abs(days_left - 54) <= 1 AS eta_within_a_day FROM fc('cache_hit_ratio');
-- a ratio trigger: APAC p99 over US p99, 1.2 now, +0.01/day -> 1.5 in 30 days
SELECT hours('region_p99_ms', '{"region": "us"}', 30, '100');
SELECT hours('region_p99_ms', '{"region": "apac"}', 30, '120 - d');
SELECT status, method, current_value, round(days_left) AS days_left FROM fc('apac_p99_over_us');

-- fewer than 7 days of data: insufficient, whatever the trend
SELECT hours('write_latency_p99_ms', '{}', 6, '50 + d');
SELECT status, days_of_data FROM fc('write_p99_over_slo_half');
SELECT hours('write_latency_p99_ms', '{}', 7, '50 - d');
SELECT status, days_of_data FROM fc('write_p99_over_slo_half');

-- a trigger that fires now says so: read QPS above 500 for the last hour
INSERT INTO capacity_sample SELECT 'read_qps', '{}', t, 650
  FROM generate_series(timestamptz '2030-02-28 22:50+00', '2030-03-01 00:00+00', interval '1 minute') t;
INSERT INTO capacity_latest_sample VALUES ('read_qps', '{}', '2030-03-01 00:00+00', 650)
ON CONFLICT (indicator, labels) DO UPDATE SET sampled_at = EXCLUDED.sampled_at, value = EXCLUDED.value;
SELECT status, days_left FROM fc('read_qps_sustained');
SELECT current_stage, recommended_stage, decision, firing FROM capacity_stage('2030-03-01 00:00+00');
DELETE FROM capacity_sample WHERE indicator = 'read_qps';
DELETE FROM capacity_latest_sample WHERE indicator = 'read_qps';

-- plan: no trigger fires, one is forecast within the horizon.  CPU crosses
-- 50 % in 14.5 days (each day's best hour counts from noon): a 14-day
-- horizon is just short of it (stage 2 lacks data: review), 15 days just
-- catch it; 90 days catch every forecast, earliest first
SELECT decision, recommended_stage, firing FROM capacity_stage('2030-03-01 00:00+00', '14 days');
SELECT decision, recommended_stage, recommended_name, firing, runbook FROM capacity_stage('2030-03-01 00:00+00', '15 days');
SELECT jsonb_pretty(evidence->'forecasts') FROM capacity_stage('2030-03-01 00:00+00', '15 days');
SELECT decision, recommended_stage, firing FROM capacity_stage('2030-03-01 00:00+00', '90 days');
-- at stage 2 only stage 3 and above are planned for
SELECT capacity_set_stage(2, 'replicas are up');
SELECT decision, recommended_stage, firing FROM capacity_stage('2030-03-01 00:00+00', '90 days');
SELECT decision, firing FROM capacity_stage('2030-03-01 00:00+00', '30 days');

-- partition runway: a managed table whose newest partition ends on 2030-03-30
CREATE TABLE fc.ledger (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT capacity_manage('fc.ledger', 'at', 'week', premake => 3);
SELECT count(*) > 0 AS created FROM capacity_rollover('fc.ledger', '2030-03-01 00:00+00');
SELECT labels, status, eta, days_left, note FROM capacity_forecast('2030-03-01 00:00+00')
 WHERE trigger_name = 'partition_runway' AND labels->>'table' = 'fc.ledger';
SELECT status FROM capacity_forecast('2030-03-01 00:00+00', '14 days')
 WHERE trigger_name = 'partition_runway' AND labels->>'table' = 'fc.ledger';
SELECT status FROM capacity_forecast('2030-04-01 00:00+00')
 WHERE trigger_name = 'partition_runway' AND labels->>'table' = 'fc.ledger';

-- the lookback is a setting: 10 days of a series that turned upwards 10
-- days ago give a nearer eta than the 30 days it was flat before
SELECT hours('kms_calls_per_min', '{}', 30, 'CASE WHEN d > 10 THEN 3000 ELSE 3000 + (10 - d) * 50 END');
SELECT status, round(days_left) AS days_left FROM fc('kms_quota');
SET matter_capacity.forecast_lookback_days = 10;
SELECT status, round(days_left) AS days_left, days_of_data FROM fc('kms_quota');
RESET matter_capacity.forecast_lookback_days;

-- the report shows each forecast with its eta and band
SELECT * FROM capacity_report('2030-03-01 00:00+00', '90 days') r
 WHERE r LIKE 'Forecast%' OR r LIKE 'stg  trigger%status%eta%' OR r ~ '^(2|3|-) .*(forecast|beyond|no trend)';

-- bad input: a clear error, nothing changed
SELECT * FROM try($$SELECT * FROM capacity_forecast('2030-03-01', '-1 day')$$);
SELECT * FROM try($$SELECT * FROM capacity_forecast('2030-03-01', NULL)$$);
SELECT * FROM try($$SELECT * FROM capacity_forecast('infinity')$$);
SELECT * FROM try($$SELECT * FROM capacity_stage('2030-03-01', '0 days')$$);
SELECT * FROM try($$SELECT * FROM capacity_fit_trend('{1,2,3}', '{1,2}')$$);
SELECT * FROM try($$SELECT * FROM capacity_fit_trend('{1,2,3}', '{1,NULL,2}')$$);
SELECT * FROM try($$SELECT * FROM capacity_fit_trend('{1,2,3}', '{1,2,3}', 5, '=')$$);
SELECT * FROM try($$SET matter_capacity.forecast_lookback_days = 3$$);
SELECT * FROM try($$SELECT capacity_roll_up_days('2030-03-01', '2030-02-01')$$);

-- clean up: leave the other tests' catalog as it was
SELECT capacity_set_stage(1, 'forecast tests done');
DELETE FROM capacity_sample_hourly WHERE hour >= '2030-01-01';
DELETE FROM capacity_sample_daily WHERE day >= '2030-01-01';
DELETE FROM capacity_sample WHERE sampled_at >= '2030-01-01';
DELETE FROM capacity_latest_sample WHERE sampled_at >= '2030-01-01';
DROP TABLE fc.ledger;

-- Clear errors where there were bare ones, and late values: a value
-- pushed after its hour was rolled up re-rolls that hour and its day.
SET TimeZone = 'UTC';
\set VERBOSITY terse
-- sparklines: values beyond the scale draw as the lowest or highest bar;
-- NaN and infinities are refused (22023)
SELECT capacity_sparkline(ARRAY[1e308, -1e308, 5, NULL]::float8[], 10) AS extremes,
       capacity_sparkline(ARRAY[1, 2]::float8[], 1e-308) AS tiny_scale,
       capacity_fmt(1e308) AS big, capacity_fmt(-2.5e20) AS negative_big;
SELECT * FROM public.try($$SELECT capacity_sparkline(ARRAY['NaN']::float8[], 1)$$);
SELECT * FROM public.try($$SELECT capacity_sparkline(ARRAY[1]::float8[], 'Infinity')$$);
-- trends: an overflowing fit (22003) and a NaN anchor (22023)
SELECT * FROM public.try($$SELECT capacity_fit_trend(ARRAY[1,2,3,4,5,6,7,8]::float8[], ARRAY[1,2,1e308,4,5,6,7,-1e308]::float8[], 10)$$);
SELECT * FROM public.try($$SELECT capacity_fit_trend(ARRAY[1,2,3,4,5,6,7,8]::float8[], ARRAY[1,2,3,4,5,6,7,8]::float8[], 10, '>', 'NaN')$$);
-- import applies max_label_bytes like capacity_record (54000, nothing loaded)
SELECT * FROM public.try($$SELECT capacity_import_samples('cpu_utilization', jsonb_build_object('x', repeat('a', 2000000)),
                                                          ARRAY[timestamptz '2026-01-01'], ARRAY[1.0], '2026-01-02')$$);
SELECT * FROM public.try($$SELECT capacity_import_samples('cpu_utilization', jsonb_build_object('x', repeat('a', 3000)),
                                                          ARRAY[timestamptz '2026-01-01'], ARRAY[1.0], '2026-01-02')$$);
SELECT count(*) AS loaded FROM capacity_sample_hourly WHERE indicator = 'cpu_utilization' AND labels ? 'x';
-- capacity_decide granted alone says what else to grant (42501), records
-- nothing; with capacity_decide_at and pg_monitor (capacity_table_binding) it records
CREATE ROLE mc_reviewer;
GRANT EXECUTE ON FUNCTION capacity_decide(text, text, timestamptz, text, text[]) TO mc_reviewer;
SET ROLE mc_reviewer;
SELECT * FROM public.try($$SELECT capacity_decide('stay', 'alone', '2031-06-01')$$);
RESET ROLE;
GRANT EXECUTE ON FUNCTION capacity_decide_at(text, text, timestamptz, jsonb, text, text[]) TO mc_reviewer;
SET ROLE mc_reviewer;
SELECT * FROM public.try($$SELECT capacity_decide('stay', 'two grants', '2031-06-01')$$);
RESET ROLE;
GRANT pg_monitor TO mc_reviewer;
SET ROLE mc_reviewer;
SELECT capacity_decide('stay', 'with both grants', '2031-06-01');
RESET ROLE;
SELECT decision, note, decided_by FROM capacity_decisions WHERE decided_at = '2031-06-01';
DELETE FROM capacity_decision WHERE decided_at = '2031-06-01';
REVOKE ALL ON FUNCTION capacity_decide(text, text, timestamptz, text, text[]) FROM mc_reviewer;
REVOKE ALL ON FUNCTION capacity_decide_at(text, text, timestamptz, jsonb, text, text[]) FROM mc_reviewer;
REVOKE pg_monitor FROM mc_reviewer;
DROP ROLE mc_reviewer;
\set VERBOSITY default

-- a late push: the hour (and day) rolled up at 10:00 with 100; a value for
-- 09:30 pushed days later is in the hourly and daily rollups at once
SELECT capacity_register_push('late_metric', 'count', 'review test');
SELECT capacity_record('late_metric', 100, '{}', '2021-01-05 09:10+00');
SELECT capacity_roll_up_days('2021-01-05', '2021-01-05') >= 0 AS rolled;
SELECT avg, count FROM capacity_sample_hourly WHERE indicator = 'late_metric';
SELECT capacity_record('late_metric', 300, '{}', '2021-01-05 09:30+00');
SELECT hour, avg, count FROM capacity_sample_hourly WHERE indicator = 'late_metric';
SELECT day, avg, max, count FROM capacity_sample_daily WHERE indicator = 'late_metric';
-- on time (within the sampler's two hours): left to the sampler
SELECT capacity_record('late_metric', 5, '{}', now());
SELECT count(*) AS rolled_now FROM capacity_sample_hourly WHERE indicator = 'late_metric' AND hour > now() - interval '3 hours';
DELETE FROM capacity_sample WHERE indicator = 'late_metric';
DELETE FROM capacity_sample_hourly WHERE indicator = 'late_metric';
DELETE FROM capacity_sample_daily WHERE indicator = 'late_metric';
DELETE FROM capacity_latest_sample WHERE indicator = 'late_metric';
DELETE FROM capacity_indicator WHERE name = 'late_metric';

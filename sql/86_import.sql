-- History import (issue 14): capacity_import_samples() loads history from
-- the monitoring system already in use through the sampler's own write
-- path, so forecasts and sustained triggers work on day one.  All times
-- are pinned (as_of 2031-06-01 00:00 UTC).
CREATE SCHEMA imp;
SET search_path = imp, public;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO';
SELECT capacity_set_stage(1, 'import tests');
SELECT count(capacity_declare(flag, 'import tests', false)) FROM capacity_declaration WHERE active;
CREATE FUNCTION imp.counts(ind text) RETURNS text LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM capacity_sample WHERE indicator = ind) || ' raw, '
        || (SELECT count(*) FROM capacity_sample_hourly WHERE indicator = ind) || ' hours, '
        || (SELECT count(*) FROM capacity_sample_daily WHERE indicator = ind) || ' days, '
        || (SELECT count(*) FROM capacity_latest_sample WHERE indicator = ind) || ' latest'
$$;

-- 1. 30 days of a pushed indicator from the old monitoring system, one
-- value a day growing by 10,000/day: the forecast has its trend at once.
SELECT capacity_import_samples('webhook_deliveries_per_day', '{}',
       ARRAY(SELECT '2031-06-01 00:00+00'::timestamptz - d * interval '1 day' FROM generate_series(30, 1, -1) d),
       ARRAY(SELECT 900000 - d * 10000.0 FROM generate_series(30, 1, -1) d),
       as_of => '2031-06-01 00:00+00') AS loaded;
SELECT imp.counts('webhook_deliveries_per_day');
SELECT status, method, current_value, round(trend_per_day::numeric) AS per_day, eta::date, days_of_data
  FROM capacity_forecast('2031-06-01 00:00+00') WHERE trigger_name = 'webhook_deliveries';

-- 2. A sustained trigger: two hours of CPU at 70 % a minute apart (from a
-- table, as exported), and primary_cpu_sustained (> 50 % for 1 h) fires.
CREATE TABLE imp.export (indicator text, labels jsonb, sampled_at timestamptz, value float8);
INSERT INTO imp.export
SELECT 'cpu_utilization', '{}', '2031-06-01 00:00+00'::timestamptz - m * interval '1 minute', 70 + m % 5
  FROM generate_series(0, 119) m;
SELECT capacity_import_samples('imp.export', as_of => '2031-06-01 00:00+00') AS loaded;
SELECT trigger_name, value, threshold, samples, window_start, status
  FROM capacity_trigger_eval('2031-06-01 00:00+00', capacity_bindings())
 WHERE trigger_name = 'primary_cpu_sustained';
SELECT 'primary_cpu_sustained' = ANY (firing) AS cpu_fires, recommended_stage
  FROM capacity_stage('2031-06-01 00:00+00');
-- imported again: nothing twice
SELECT capacity_import_samples('imp.export', as_of => '2031-06-01 00:00+00') AS loaded_again;
SELECT imp.counts('cpu_utilization');

-- 3. The rollups equal those the sampler makes.  The same 2 days of
-- 5-minute values: pushed to imp_sampled with a sampling every hour,
-- imported into imp_imported.
SELECT capacity_register_push('imp_sampled', 'ms'), capacity_register_push('imp_imported', 'ms');
CREATE TABLE imp.series AS
SELECT '2031-05-30 00:00+00'::timestamptz + g * interval '5 minutes' AS at, ((g * 37) % 101)::float8 / 4 AS v
  FROM generate_series(0, 575) g;
DO $$
DECLARE h timestamptz;
BEGIN
    FOR h IN SELECT generate_series('2031-05-30 01:00+00'::timestamptz, '2031-06-01 00:00+00', '1 hour') LOOP
        PERFORM capacity_record('imp_sampled', s.v, '{"k": 1}', s.at) FROM imp.series s
          WHERE s.at >= h - interval '1 hour' AND s.at < h;
        PERFORM capacity_sample_now(h);
    END LOOP;
END $$;
SELECT capacity_import_samples('imp_imported', '{"k": 1}', ARRAY(SELECT at FROM imp.series ORDER BY at),
                               ARRAY(SELECT v FROM imp.series ORDER BY at), as_of => '2031-06-01 00:00+00') AS loaded;
SELECT imp.counts('imp_sampled') AS sampled, imp.counts('imp_imported') AS imported;
SELECT count(*) AS hours_compared,
       count(*) FILTER (WHERE (a.min, a.max, round(a.avg::numeric, 9), a.last, a.count)
                              IS NOT DISTINCT FROM (b.min, b.max, round(b.avg::numeric, 9), b.last, b.count)) AS hours_equal
  FROM (SELECT * FROM capacity_sample_hourly WHERE indicator = 'imp_sampled') a
  FULL JOIN (SELECT * FROM capacity_sample_hourly WHERE indicator = 'imp_imported') b
    ON b.hour = a.hour AND b.labels = a.labels;
SELECT count(*) AS days_compared,
       count(*) FILTER (WHERE (a.min, a.max, round(a.avg::numeric, 9), a.last, a.count, a.peak_hour_min, a.trough_hour_max,
                               round(a.peak_hour_avg::numeric, 9), round(a.trough_hour_avg::numeric, 9))
                              IS NOT DISTINCT FROM (b.min, b.max, round(b.avg::numeric, 9), b.last, b.count, b.peak_hour_min,
                               b.trough_hour_max, round(b.peak_hour_avg::numeric, 9), round(b.trough_hour_avg::numeric, 9))) AS days_equal
  FROM (SELECT * FROM capacity_sample_daily WHERE indicator = 'imp_sampled') a
  FULL JOIN (SELECT * FROM capacity_sample_daily WHERE indicator = 'imp_imported') b
    ON b.day = a.day AND b.labels = a.labels;
SELECT (SELECT value FROM capacity_latest WHERE indicator = 'imp_sampled') AS latest_sampled,
       (SELECT value FROM capacity_latest WHERE indicator = 'imp_imported') AS latest_imported;

-- 4. Older than the raw retention (35 days): hourly and daily rollups only.
SELECT capacity_import_samples('database_bytes', '{}',
       ARRAY(SELECT '2031-04-01 00:00+00'::timestamptz + h * interval '30 minutes' FROM generate_series(0, 47) h),
       ARRAY(SELECT 1e9 + h FROM generate_series(0, 47) h), as_of => '2031-06-01 00:00+00') AS loaded;
SELECT (SELECT count(*) FROM capacity_sample WHERE indicator = 'database_bytes' AND sampled_at < '2031-05-01') AS raw,
       (SELECT count(*) FROM capacity_sample_hourly WHERE indicator = 'database_bytes' AND hour < '2031-05-01') AS hours;
SELECT day, min, max, avg, last, count FROM capacity_sample_daily WHERE indicator = 'database_bytes' AND day < '2031-05-01';

-- 5. Bad input: refused, naming the indicator and the element, nothing loaded.
\x on
SELECT * FROM try($q$SELECT capacity_import_samples('imp_importd', '{}', ARRAY['2031-05-31 00:00+00'::timestamptz], ARRAY[1::float8],
                               as_of => '2031-06-01 00:00+00')$q$);
SELECT * FROM try($q$SELECT capacity_import_samples('imp_imported', '{"k": 2}', ARRAY['2031-05-31 00:00+00', '2031-05-31 00:05+00']::timestamptz[],
                               ARRAY[1, 'NaN']::float8[], as_of => '2031-06-01 00:00+00')$q$);
SELECT * FROM try($q$SELECT capacity_import_samples('imp_imported', '{"k": 2}', ARRAY['2031-05-31 00:00+00', '2031-05-31 00:05+00']::timestamptz[],
                               ARRAY[1, '-Infinity']::float8[], as_of => '2031-06-01 00:00+00')$q$);
SELECT * FROM try($q$SELECT capacity_import_samples('imp_imported', '{"k": 2}', ARRAY['2031-05-31 00:00+00', NULL]::timestamptz[],
                               ARRAY[1, 2]::float8[], as_of => '2031-06-01 00:00+00')$q$);
SELECT * FROM try($q$SELECT capacity_import_samples('imp_imported', '{"k": 2}', ARRAY['2031-05-31 00:00+00', '2031-06-02 00:00+00']::timestamptz[],
                               ARRAY[1, 2]::float8[], as_of => '2031-06-01 00:00+00')$q$);
SELECT * FROM try($q$SELECT capacity_import_samples('imp_imported', '[1]', ARRAY['2031-05-31 00:00+00']::timestamptz[],
                               ARRAY[1]::float8[], as_of => '2031-06-01 00:00+00')$q$);
SELECT * FROM try($q$SELECT capacity_import_samples('imp_imported', '{"k": 2}', ARRAY['2031-05-31 00:00+00']::timestamptz[],
                               ARRAY[1, 2]::float8[], as_of => '2031-06-01 00:00+00')$q$);
-- from a table: good rows before and after the bad one, none loaded
CREATE TABLE imp.bad_export (LIKE imp.export);
INSERT INTO imp.bad_export VALUES
  ('imp_imported', '{"k": 3}', '2031-05-31 00:00+00', 1),
  ('imp_imported', '{"k": 3}', '2031-05-31 00:10+00', NULL),
  ('imp_imported', '{"k": 3}', '2031-05-31 00:20+00', 3);
SELECT * FROM try($q$SELECT capacity_import_samples('imp.bad_export', as_of => '2031-06-01 00:00+00')$q$);
CREATE TABLE imp.wrong_columns (metric text, sampled_at timestamptz, value float8);
SELECT * FROM try($q$SELECT capacity_import_samples('imp.wrong_columns', as_of => '2031-06-01 00:00+00')$q$);
\x off
SELECT count(*) AS nothing_loaded FROM capacity_latest_sample WHERE labels ->> 'k' IN ('2', '3');
-- not for PUBLIC; a role granted the table form reads the source with its own rights
CREATE ROLE imp_reader;
SELECT p.oid::regprocedure AS function, has_function_privilege('imp_reader', p.oid, 'EXECUTE') AS public_may_run
  FROM pg_proc p WHERE p.proname IN ('capacity_import_samples', 'capacity_import_load') ORDER BY p.oid::regprocedure::text COLLATE "C";
GRANT USAGE ON SCHEMA imp TO imp_reader;
GRANT EXECUTE ON FUNCTION capacity_import_samples(regclass, timestamptz) TO imp_reader;
SET ROLE imp_reader;
SELECT * FROM try($q$SELECT capacity_import_samples('imp.export', as_of => '2031-06-01 00:00+00')$q$);
RESET ROLE;
GRANT SELECT ON imp.export TO imp_reader;
SET ROLE imp_reader;
SELECT capacity_import_samples('imp.export', as_of => '2031-06-01 00:00+00') AS loaded_again;
RESET ROLE;

-- leave nothing for later tests
DELETE FROM capacity_sample WHERE sampled_at >= '2031-01-01';
DELETE FROM capacity_sample_hourly WHERE hour >= '2031-01-01';
DELETE FROM capacity_sample_daily WHERE day >= '2031-01-01';
DELETE FROM capacity_latest_sample WHERE sampled_at >= '2031-01-01';
REVOKE ALL ON FUNCTION capacity_import_samples(regclass, timestamptz) FROM imp_reader;
REVOKE ALL ON SCHEMA imp FROM imp_reader;
SET client_min_messages = warning;
DROP SCHEMA imp CASCADE;
DROP ROLE imp_reader;
RESET client_min_messages;

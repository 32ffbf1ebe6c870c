-- Indicators: built-in samples from the real server, pushed values,
-- probes run as their owner, bounded history.  Values that depend on the
-- machine (sizes, CPU) are checked for shape, not printed.
CREATE SCHEMA ind;
SET search_path = ind, public;
SET TimeZone = 'UTC';
SET client_min_messages = warning;

-- a pg_partman-managed table beside ours: table indicators cover both
CREATE SCHEMA partman;
CREATE EXTENSION pg_partman SCHEMA partman;
CREATE TABLE ind.pm_events (id bigint, created timestamptz NOT NULL) PARTITION BY RANGE (created);
SELECT partman.create_parent('ind.pm_events', 'created', 'native', 'daily', p_premake := 2,
       p_start_partition := '2026-11-20') IS NOT NULL AS partman_ok;
-- pg_partman premakes from the wall clock (now() + premake days): pin the
-- set to the five days [2026-11-20, 2026-11-25) whatever day the test runs,
-- so the runway below is 2.5 days from the 2026-11-22 12:00 sample
SELECT partman.create_partition_time('ind.pm_events',
       ARRAY(SELECT generate_series(timestamptz '2026-11-20', '2026-11-24', interval '1 day')),
       p_analyze := false) IS NOT NULL AS pinned;
DO $$
DECLARE child text;
BEGIN
  FOR child IN SELECT format('%I.%I', p.partition_schemaname, p.partition_tablename)
                 FROM partman.show_partitions('ind.pm_events') p LOOP
    IF (SELECT child_start_time FROM partman.show_partition_info(child)) >= '2026-11-25' THEN
      EXECUTE format('DROP TABLE %s', child);
    END IF;
  END LOOP;
END $$;
SELECT partition_tablename FROM partman.show_partitions('ind.pm_events');
INSERT INTO ind.pm_events SELECT g, '2026-11-21 12:00+00' FROM generate_series(1, 70) g;
CREATE TABLE ind.ours (org int NOT NULL, t timestamptz NOT NULL) PARTITION BY RANGE (t);
SELECT capacity_manage('ind.ours', 't', 'day', 'org', 2, premake => 3);
SELECT count(*) FROM capacity_rollover('ind.ours', as_of => '2026-11-22 00:00+00');
INSERT INTO ind.ours SELECT g, '2026-11-22 06:00+00' FROM generate_series(1, 30) g;
INSERT INTO ind.ours VALUES (1, '2027-06-01 00:00+00'), (2, '2027-06-02 00:00+00');  -- default partition
SELECT pg_stat_force_next_flush();

SELECT capacity_sample_now('2026-11-22 12:00+00') > 0 AS sampled;
SELECT indicator, labels, value
  FROM capacity_latest
 WHERE indicator IN ('table_rows', 'table_rows_inserted', 'default_partition_rows', 'partition_runway_days')
   AND labels->>'table' LIKE 'ind.%'
 ORDER BY indicator, labels::text;
-- sizes and connections exist and are positive; our own catalog is not a "table"
SELECT indicator, count(*) > 0 AS has_series, bool_and(value >= 0) AS not_negative,
       bool_or(value > 0) AS some_positive
  FROM capacity_latest
 WHERE indicator IN ('table_bytes', 'database_bytes', 'connections', 'connections_utilization', 'pool_utilization')
 GROUP BY 1 ORDER BY 1;
SELECT count(*) AS own_tables_sampled FROM capacity_latest WHERE labels->>'table' LIKE '%capacity_sample%';
-- rates and CPU need a previous sample; hooks are absent without preload
SELECT count(*) AS first_rates FROM capacity_sample
 WHERE indicator IN ('cache_hit_ratio', 'read_qps', 'write_qps', 'read_latency_p99_ms');

-- a second sample: the cache hit ratio is a rate between two samples
SELECT count(*) FROM ind.ours;
SELECT pg_stat_force_next_flush();
SELECT capacity_sample_now('2026-11-22 12:05+00') > 0 AS sampled;
SELECT count(*) AS ratios, bool_and(value BETWEEN 0 AND 1) AS in_range
  FROM capacity_sample WHERE indicator = 'cache_hit_ratio' AND sampled_at = '2026-11-22 12:05+00';
SELECT count(*) AS cpu_samples, bool_and(value IS NULL OR value BETWEEN 0 AND 100) AS in_range
  FROM capacity_sample WHERE indicator = 'cpu_utilization' AND sampled_at = '2026-11-22 12:05+00';
-- a counter reset (stats reset, restart) makes the counter go backwards:
-- that interval is skipped, never a negative or huge rate
UPDATE capacity_counter SET value = value * 1000 + 1e12 WHERE name IN ('blks_hit', 'blks_read');
SELECT capacity_sample_now('2026-11-22 12:10+00') > 0 AS sampled;
SELECT count(*) AS ratios_after_reset
  FROM capacity_sample WHERE indicator = 'cache_hit_ratio' AND sampled_at = '2026-11-22 12:10+00';

-- pool utilisation: the role's connection limit, else the override, else
-- max_connections less reserved slots (this session is the one connection)
SELECT capacity_set_pool_size('postgres', 4);
SELECT capacity_sample_now('2026-11-22 12:11+00') > 0 AS sampled;
SELECT labels, value FROM capacity_latest WHERE indicator = 'pool_utilization' AND labels->>'role' = 'postgres';
ALTER ROLE postgres CONNECTION LIMIT 10;   -- a role's own limit wins over the override
SELECT capacity_sample_now('2026-11-22 12:11:30+00') > 0 AS sampled;
SELECT labels, value FROM capacity_latest WHERE indicator = 'pool_utilization' AND labels->>'role' = 'postgres';
ALTER ROLE postgres CONNECTION LIMIT -1;
SELECT capacity_set_pool_size('postgres', NULL);
SELECT capacity_sample_now('2026-11-22 12:12+00') > 0 AS sampled;
SELECT round(value::numeric, 3) = round(100.0 / (current_setting('max_connections')::int
         - current_setting('superuser_reserved_connections')::int), 3) AS falls_back_to_max_connections
  FROM capacity_latest WHERE indicator = 'pool_utilization' AND labels->>'role' = 'postgres';
SELECT * FROM try($q$SELECT capacity_set_pool_size('postgres', 0)$q$);

-- pushed indicators
SELECT capacity_register_push('webhook_p99_ms', 'ms', 'Webhook receiver p99 per endpoint');
SELECT capacity_record('webhook_p99_ms', 412.5, '{"endpoint": "acme"}', '2026-11-22 12:00+00');
SELECT capacity_record('webhook_p99_ms', 380, '{"endpoint": "acme"}', '2026-11-22 12:01+00');
SELECT capacity_record('webhook_p99_ms', 999, '{"endpoint": "acme"}', '2026-11-22 11:00+00');  -- late, older
SELECT indicator, labels, sampled_at, value, unit, source FROM capacity_latest WHERE indicator = 'webhook_p99_ms';
SELECT count(*) AS before_bad FROM capacity_sample WHERE indicator = 'webhook_p99_ms' \gset
SELECT * FROM try($q$SELECT capacity_record('no_such', 1)$q$);
SELECT * FROM try($q$SELECT capacity_record('table_rows', 1)$q$);
SELECT * FROM try($q$SELECT capacity_record('webhook_p99_ms', 'NaN')$q$);
SELECT * FROM try($q$SELECT capacity_record('webhook_p99_ms', 'Infinity')$q$);
SELECT * FROM try($q$SELECT capacity_record('webhook_p99_ms', '-Infinity')$q$);
SELECT * FROM try($q$SELECT capacity_record('webhook_p99_ms', 1, '[1, 2]')$q$);
SELECT * FROM try($q$SELECT capacity_record('webhook_p99_ms', 1, '{}', 'infinity')$q$);
SELECT * FROM try($q$SELECT capacity_register_push('Bad Name')$q$);
SELECT * FROM try($q$SELECT capacity_register_push('table_rows')$q$);
SELECT count(*) = :before_bad AS nothing_written FROM capacity_sample WHERE indicator = 'webhook_p99_ms';

-- probes
SELECT capacity_register_probe('ours_orgs', 'SELECT count(DISTINCT org) FROM ours', 'orgs');
SELECT capacity_register_probe('ours_by_org_parity',
       $$SELECT jsonb_build_object('parity', org % 2), count(*) FROM ours GROUP BY 1$$, 'rows');
SELECT capacity_register_probe('broken_probe', 'SELECT 1 / (SELECT count(*) - count(*) FROM ours)');
-- slow by work, not by sleeping: under libfaketime (test/integration/clock.sh)
-- a timer signal that arrives while a backend sleeps sees the real clock,
-- so a sleeping probe would never time out there
SELECT capacity_register_probe('slow_probe',
       'SELECT count(*) FROM generate_series(1, 30000) a, generate_series(1, 30000) b');
SELECT * FROM try($q$SELECT capacity_register_probe('p1', 'DELETE FROM ours')$q$);
SELECT * FROM try($q$SELECT capacity_register_probe('p2', 'SELECT 1; SELECT 2')$q$);
SELECT * FROM try($q$SELECT capacity_register_probe('p3', 'SELECT ''x''::text')$q$);
SELECT * FROM try($q$SELECT capacity_register_probe('p4', 'SELECT 1, 2')$q$);
SELECT * FROM try($q$SELECT capacity_register_probe('p5', 'SELECT org FROM ours FOR UPDATE')$q$);
SELECT * FROM try($q$SELECT capacity_register_probe('p6', 'SELEC 1')$q$);
SELECT * FROM try($q$SELECT capacity_register_probe('p7', 'SELECT 1 FROM no_such_table')$q$);
SELECT * FROM try($q$SELECT capacity_register_probe('p8', 'SELECT 1 INTO TEMP x')$q$);
SELECT * FROM try($q$SELECT capacity_register_probe('table_rows', 'SELECT 1')$q$);
SELECT count(*) AS bad_probes_stored FROM capacity_indicator WHERE name ~ '^p[0-9]$';
-- an ordinary role's probe runs as that role: it cannot read what the role cannot
CREATE ROLE mc_prober;
GRANT USAGE ON SCHEMA ind TO mc_prober;
GRANT EXECUTE ON FUNCTION capacity_register_probe(text, text, text) TO mc_prober;
SET ROLE mc_prober;
SELECT capacity_register_probe('prober_peek', 'SELECT count(*) FROM ind.ours');
RESET ROLE;
SET matter_capacity.probe_timeout = 200;
SET client_min_messages = warning;
SELECT capacity_sample_now('2026-11-22 12:15+00') > 0 AS sampled;
SELECT indicator, labels, value FROM capacity_latest WHERE indicator LIKE 'ours%' ORDER BY indicator, labels::text;
SELECT indicator, last_samples, last_error FROM capacity_indicator_status
 WHERE source = 'sql' ORDER BY 1;
RESET matter_capacity.probe_timeout;
DELETE FROM capacity_indicator WHERE name IN ('slow_probe', 'broken_probe', 'prober_peek');
REVOKE ALL ON SCHEMA ind FROM mc_prober;
REVOKE EXECUTE ON FUNCTION capacity_register_probe(text, text, text) FROM mc_prober;
DROP ROLE mc_prober;

-- bounded history: 40 simulated days of sampling; raw samples keep 35 days,
-- hourly rollups keep all
SELECT sum(capacity_sample_now(timestamptz '2027-01-01 00:30+00' + d * interval '1 day')) > 0 AS sampled
  FROM generate_series(0, 39) d;
SELECT min(sampled_at) AS oldest_raw, max(sampled_at) AS newest_raw,
       count(DISTINCT date_trunc('day', sampled_at)) AS raw_days
  FROM capacity_sample WHERE sampled_at >= '2027-01-01';
SELECT count(DISTINCT date_trunc('day', hour)) AS rollup_days, min(hour), max(hour)
  FROM capacity_sample_hourly WHERE hour >= '2027-01-01' AND indicator = 'database_bytes';
SELECT count(*) AS raw_partitions FROM capacity_partition_tree('capacity_sample') WHERE NOT is_default;
-- a rollup row: min/max/avg/last/count of one hour
SELECT indicator, labels, hour, min, max, avg, last, count FROM capacity_sample_hourly
 WHERE indicator = 'webhook_p99_ms' ORDER BY hour;
-- and the daily rollups forecasts are fitted on, one per sampled day
SELECT count(*) AS daily_rollups, min(day), max(day)
  FROM capacity_sample_daily WHERE day >= '2027-01-01' AND indicator = 'database_bytes';
SELECT indicator, labels, day, min, max, avg, last, count, peak_hour_min, trough_hour_max
  FROM capacity_sample_daily WHERE indicator = 'webhook_p99_ms' ORDER BY day;
-- the log of the sample table's own rollovers
SELECT action, count(*) > 0 AS happened FROM capacity_rollover_log
 WHERE table_name LIKE '%capacity_sample%' GROUP BY 1 ORDER BY 1;

-- privileges
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_can_execute
  FROM pg_proc p
 WHERE p.proname IN ('capacity_sample_now', 'capacity_record', 'capacity_register_probe',
                     'capacity_register_push', 'capacity_set_pool_size')
 ORDER BY 1;
SELECT has_table_privilege('pg_monitor', 'capacity_latest', 'SELECT') AS monitor_latest,
       has_table_privilege('pg_monitor', 'capacity_indicator_status', 'SELECT') AS monitor_status;

-- Measures the presets need (issue 14): table_rows_deleted, tenant shares
-- from a bounded sample, statement_top_share without pg_stat_statements.
-- Pinned: as_of in July 2031, the sample's seed fixed.
CREATE SCHEMA ms;
SET search_path = ms, public;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO';
CREATE FUNCTION ms.flush() RETURNS void LANGUAGE sql AS $$ SELECT pg_stat_force_next_flush() $$;
CREATE FUNCTION ms.latest(ind text) RETURNS TABLE(labels jsonb, value float8) LANGUAGE sql AS $$
    SELECT labels, round(value::numeric, 4)::float8 FROM capacity_latest
     WHERE indicator = ind AND labels->>'table' LIKE 'ms.%' ORDER BY 1
$$;

-- 1. table_rows_deleted: rows the application deleted, a counter that only
-- grows (rows moved out of the default partition, detached and dropped
-- partitions and statistics resets are not deletes).
CREATE TABLE ms.purge (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT capacity_manage('ms.purge', 'at', 'day', premake => 1, retention => '3 days', retention_action => 'drop');
SELECT count(*) FROM capacity_rollover('ms.purge', as_of => '2031-07-01 00:00+00');
INSERT INTO ms.purge SELECT g, '2031-07-01 00:00+00'::timestamptz + g * interval '1 second' FROM generate_series(1, 1000) g;
SELECT ms.flush();
SELECT capacity_sample_now('2031-07-01 01:00+00') > 0 AS sampled;
SELECT * FROM ms.latest('table_rows_deleted');
DELETE FROM ms.purge WHERE id <= 100;
SELECT ms.flush();
SELECT capacity_sample_now('2031-07-01 02:00+00') > 0 AS sampled;
SELECT * FROM ms.latest('table_rows_deleted');
-- late rows land in the default partition and are moved out: not deletes
INSERT INTO ms.purge SELECT g, '2031-07-03 12:00+00' FROM generate_series(1, 50) g;
SELECT ms.flush();
SELECT action, partition_name, detail FROM capacity_rollover('ms.purge', as_of => '2031-07-02 00:00+00') WHERE action = 'moved_rows';
SELECT ms.flush();
SELECT capacity_sample_now('2031-07-02 01:00+00') > 0 AS sampled;
SELECT * FROM ms.latest('table_rows_deleted');
-- more deletes, then retention drops the partition that had them, and its
-- statistics go with it: the counter keeps them
DELETE FROM ms.purge WHERE id BETWEEN 101 AND 130 AND at < '2031-07-02';
SELECT ms.flush();
SELECT capacity_sample_now('2031-07-02 02:00+00') > 0 AS sampled;
SELECT action, partition_name FROM capacity_rollover('ms.purge', as_of => '2031-07-05 00:00+00') WHERE action = 'dropped';
SELECT capacity_sample_now('2031-07-05 01:00+00') > 0 AS sampled;
SELECT * FROM ms.latest('table_rows_deleted');
-- a statistics reset of a leaf: the counter does not go back, and counts
-- the leaf's deletes from zero again
DELETE FROM ms.purge WHERE id <= 10 AND at >= '2031-07-03';
SELECT ms.flush();
SELECT capacity_sample_now('2031-07-05 02:00+00') > 0 AS sampled;
SELECT * FROM ms.latest('table_rows_deleted');
SELECT pg_stat_reset_single_table_counters('ms.purge_p20310703'::regclass);
SELECT capacity_sample_now('2031-07-05 03:00+00') > 0 AS sampled;
SELECT * FROM ms.latest('table_rows_deleted');
DELETE FROM ms.purge WHERE id BETWEEN 11 AND 15 AND at >= '2031-07-03';
SELECT ms.flush();
SELECT capacity_sample_now('2031-07-05 04:00+00') > 0 AS sampled;
SELECT * FROM ms.latest('table_rows_deleted');
SELECT value FROM capacity_sample WHERE indicator = 'table_rows_deleted' AND labels = '{"table": "ms.purge"}' ORDER BY sampled_at;

-- 2. Tenant shares: a table hash-partitioned by tenant; org0 writes 20 %
-- of the rows, orgs 1..199 the rest, all in the current week.
CREATE TABLE ms.ev (id bigint, org text NOT NULL, at timestamptz NOT NULL, body text) PARTITION BY RANGE (at);
SELECT capacity_manage('ms.ev', 'at', 'week', 'org', 4, premake => 1);
SELECT count(*) FROM capacity_rollover('ms.ev', as_of => '2031-07-09 00:00+00');
INSERT INTO ms.ev SELECT g, 'org' || CASE WHEN g % 5 = 0 THEN 0 ELSE g % 199 + 1 END,
                         '2031-07-07 00:00+00'::timestamptz + g * interval '1 second', repeat('x', 40)
  FROM generate_series(1, 200000) g;
ANALYZE ms.ev;
-- the exact answer, for comparison
WITH c AS (SELECT org, count(*)::numeric AS n FROM ms.ev GROUP BY org)
SELECT round(max(n) / sum(n), 4) AS exact_top, round((SELECT sum(n) FROM (SELECT n FROM c ORDER BY n DESC LIMIT 10) t) / sum(n), 4) AS exact_top10,
       count(*) AS exact_tenants, percentile_cont(0.5) WITHIN GROUP (ORDER BY n) AS exact_p50,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY n) AS exact_p99
  FROM c;
-- a sample of 5,000 rows (the default is 30,000), seed fixed
SET matter_capacity.tenant_sample_rows = 5000;
SET matter_capacity.tenant_sample_seed = 42;
SELECT capacity_sample_now('2031-07-09 00:00+00') > 0 AS sampled;
SELECT indicator, round(value::numeric, 6) AS value FROM capacity_latest WHERE labels = '{"table": "ms.ev"}' AND indicator LIKE 'tenant%' ORDER BY 1;
-- the estimate is within three standard errors of the exact share
SELECT abs((SELECT value FROM capacity_latest WHERE indicator = 'tenant_top_share' AND labels = '{"table": "ms.ev"}') - 0.2)
       < 3 * (SELECT value FROM capacity_latest WHERE indicator = 'tenant_top_share_stderr' AND labels = '{"table": "ms.ev"}') AS within_3_se,
       (SELECT value FROM capacity_latest WHERE indicator = 'tenant_top_share_stderr' AND labels = '{"table": "ms.ev"}') BETWEEN 0.001 AND 0.05 AS se_sane;
-- a budget larger than the window: read whole, exact, no error
SET matter_capacity.tenant_sample_rows = 1000000;
SELECT capacity_sample_now('2031-07-09 00:05+00') > 0 AS sampled;
SELECT indicator, round(value::numeric, 6) AS value FROM capacity_latest WHERE labels = '{"table": "ms.ev"}' AND indicator LIKE 'tenant%' ORDER BY 1;
RESET matter_capacity.tenant_sample_rows;

-- 3. The read runs as the table's owner: with row-level security forced
-- and a policy that hides every row from the owner, the owner's read finds
-- nothing (the extension owner, a superuser, would have read them all).
CREATE ROLE ms_owner;
GRANT USAGE, CREATE ON SCHEMA ms TO ms_owner;
CREATE TABLE ms.rls (id bigint, org text NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
ALTER TABLE ms.rls OWNER TO ms_owner;
SELECT capacity_manage('ms.rls', 'at', 'week', 'org', 2, premake => 1);
SELECT count(*) FROM capacity_rollover('ms.rls', as_of => '2031-07-09 00:00+00');
INSERT INTO ms.rls SELECT g, 'org' || g % 3, '2031-07-08 00:00+00' FROM generate_series(1, 300) g;
ALTER TABLE ms.rls_p2031w28_h00 ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE ms.rls_p2031w28_h01 ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY hide ON ms.rls_p2031w28_h00 USING (current_user <> 'ms_owner');
CREATE POLICY hide ON ms.rls_p2031w28_h01 USING (current_user <> 'ms_owner');
SELECT capacity_sample_now('2031-07-09 00:10+00') > 0 AS sampled;
SELECT count(*) AS rls_samples FROM capacity_latest WHERE labels = '{"table": "ms.rls"}' AND indicator LIKE 'tenant%';
SELECT substring(note FROM 'ms\.rls skipped: [^;]*') AS rls_note FROM capacity_indicator_status WHERE indicator = 'tenant_top_share';

-- 4. statement_top_share without pg_stat_statements: no sample, and the
-- status says why.
SELECT last_samples, note FROM capacity_indicator_status WHERE indicator = 'statement_top_share';
SELECT count(*) AS statement_samples FROM capacity_sample WHERE indicator = 'statement_top_share';

-- leave nothing for later tests
RESET matter_capacity.tenant_sample_seed;
SET client_min_messages = warning;
DELETE FROM capacity_sample WHERE sampled_at >= '2031-01-01';
DELETE FROM capacity_sample_hourly WHERE hour >= '2031-01-01';
DELETE FROM capacity_sample_daily WHERE day >= '2031-01-01';
DELETE FROM capacity_latest_sample WHERE sampled_at >= '2031-01-01';
DROP SCHEMA ms CASCADE;
DROP ROLE ms_owner;
RESET client_min_messages;

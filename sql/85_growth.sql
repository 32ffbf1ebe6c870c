-- table_rows_inserted counts the rows the application wrote, as a counter
-- that only grows: through retention drops and detaches, rows the rescue
-- moves out of the default partition, a conversion's backfill copies, and
-- a statistics reset.  Times are pinned (as_of); each day's inserts reach
-- the statistics before the next statement (pg_stat_force_next_flush).
CREATE SCHEMA gr;
SET search_path = gr, public;
SET TimeZone = 'UTC';
CREATE TABLE gr.ev (org int NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT capacity_manage('gr.ev', 'at', 'day', premake => 2, retention => '3 days', retention_action => 'drop');
-- day d: roll over at its midnight, then the application writes n rows
CREATE FUNCTION gr.day(d int, n int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t timestamptz := '2031-03-01 00:00+00'::timestamptz + d * interval '1 day';
BEGIN
    PERFORM count(*) FROM capacity_rollover('gr.ev', as_of => t);
    INSERT INTO gr.ev SELECT g, t + interval '1 hour' FROM generate_series(1, n) g;
    PERFORM pg_stat_force_next_flush();
END $$;
-- sample at 02:00 of day d; the table's figures
CREATE FUNCTION gr.sample(d int, tbl text DEFAULT 'gr.ev') RETURNS TABLE(inserted float8, live_rows float8) LANGUAGE sql AS $$
    SELECT capacity_sample_now('2031-03-01 02:00+00'::timestamptz + d * interval '1 day');
    SELECT (SELECT value FROM capacity_latest WHERE indicator = 'table_rows_inserted' AND labels = jsonb_build_object('table', tbl)),
           (SELECT value FROM capacity_latest WHERE indicator = 'table_rows' AND labels = jsonb_build_object('table', tbl));
$$;

-- an empty table starts at 0; 100 rows a day for six days, the partitions
-- of days older than three dropped by retention: the table keeps 300-400
-- rows, the counter goes on 100 a day
SELECT * FROM sample(-1);
SELECT day(0, 100);
SELECT * FROM sample(0);
SELECT day(1, 100);
SELECT * FROM sample(1);
SELECT day(2, 100);
SELECT * FROM sample(2);
SELECT day(3, 100);
SELECT * FROM sample(3);
SELECT day(4, 100);
SELECT * FROM sample(4);
SELECT day(5, 100);
SELECT * FROM sample(5);
SELECT sampled_at::date, value FROM capacity_sample
 WHERE indicator = 'table_rows_inserted' AND labels = '{"table": "gr.ev"}' ORDER BY sampled_at;

-- a growth trigger reads 100 rows a day over the last four days, two of
-- which saw a partition dropped (a sum over today's leaves would say 50)
INSERT INTO capacity_trigger (name, indicator, label_filter, aggregate, per_period, comparator, threshold, sustain, description)
VALUES ('gr_growth', 'table_rows_inserted', '{"table": "gr.ev"}', 'growth', '1 day', '>', 1000, '4 days', 'gr.ev growth');
SELECT trigger_name, labels, value AS rows_per_day, status
  FROM capacity_trigger_eval('2031-03-06 02:00+00', capacity_bindings()) WHERE trigger_name = 'gr_growth';
DELETE FROM capacity_trigger WHERE name = 'gr_growth';

-- a partition detached by hand keeps what it contributed
ALTER TABLE gr.ev DETACH PARTITION gr.ev_p20310305;
SELECT day(6, 10);
SELECT * FROM sample(6);

-- 50 rows dated past the premade partitions wait in the default partition
-- (the application wrote them: +50); the rescue moves them into the new
-- period's partition: not growth (+0)
INSERT INTO gr.ev SELECT g, '2031-03-12 01:00+00' FROM generate_series(1, 50) g;
SELECT pg_stat_force_next_flush();
SELECT * FROM sample(6);
SELECT action, partition_name, detail FROM capacity_rollover('gr.ev', as_of => '2031-03-10 00:00+00')
 WHERE action = 'moved_rows';
SELECT pg_stat_force_next_flush();
SELECT * FROM sample(9);

-- a table sampled for the first time after a rescue: its rows, not the
-- rows and their moves (30, not 60)
CREATE TABLE gr.fresh (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT capacity_manage('gr.fresh', 'at', 'day', premake => 1);
SELECT count(*) > 0 AS rolled FROM capacity_rollover('gr.fresh', as_of => '2031-03-01 00:00+00');
INSERT INTO gr.fresh SELECT '2031-03-08 01:00+00' FROM generate_series(1, 30);
SELECT action, detail FROM capacity_rollover('gr.fresh', as_of => '2031-03-08 00:00+00') WHERE action = 'moved_rows';
SELECT pg_stat_force_next_flush();
SELECT * FROM sample(9, 'gr.fresh');

-- a statistics reset zeroes every leaf's count: the counter stays, and
-- goes on with what is written after it.  The live counts restart from
-- zero too and stay wrong until the next ANALYZE or VACUUM: until then a
-- reset leaf counts as its rows at the last ANALYZE plus what was written
-- since (60 + 20 rows, not 20)
ANALYZE gr.ev;
SELECT pg_stat_reset_single_table_counters('gr.ev_p20310310'::regclass);
SELECT pg_stat_reset();
INSERT INTO gr.ev SELECT g, '2031-03-10 03:00+00' FROM generate_series(1, 20) g;
SELECT pg_stat_force_next_flush();
SELECT * FROM sample(9);
ANALYZE gr.ev;
SELECT * FROM sample(9);
SELECT count(*) AS rows, count(*) FILTER (WHERE reset) AS marked_reset
  FROM capacity_leaf_inserts s JOIN pg_partition_tree('gr.ev') t ON t.relid = s.leaf;

-- a conversion: the old rows become the baseline of the new partitioned
-- table; the backfill's copies into period partitions are not growth, the
-- application's 7 rows written meanwhile are
CREATE TABLE gr.plain (id bigint GENERATED ALWAYS AS IDENTITY, at timestamptz NOT NULL, PRIMARY KEY (id, at));
INSERT INTO gr.plain (at) SELECT '2031-02-10 00:00+00'::timestamptz + g * interval '1 hour' FROM generate_series(1, 500) g;
SET client_min_messages = warning;
CALL capacity_convert('gr.plain', 'at', 'week', premake => 1, as_of => '2031-03-10 00:00+00');
RESET client_min_messages;
SELECT pg_stat_force_next_flush();
SELECT * FROM sample(9, 'gr.plain');
INSERT INTO gr.plain (at) SELECT '2031-03-12 00:00+00'::timestamptz + g * interval '1 hour' FROM generate_series(1, 5) g;
SET client_min_messages = warning;
CALL capacity_convert_backfill('gr.plain', 200, max_batches => 1);
INSERT INTO gr.plain (at) SELECT '2031-02-20 00:00+00'::timestamptz + g * interval '1 hour' FROM generate_series(1, 2) g;
CALL capacity_convert_backfill('gr.plain', 200);
RESET client_min_messages;
SELECT state, rows_moved FROM capacity_conversions WHERE table_name = 'gr.plain'::regclass;
SELECT pg_stat_force_next_flush();
SELECT * FROM sample(10, 'gr.plain');
SELECT * FROM sample(11, 'gr.plain');

-- nothing is left over for tables that are gone
DROP TABLE gr.ev_p20310305;
DROP SCHEMA gr CASCADE;
SELECT capacity_sample_now('2031-03-13 02:00+00') > 0 AS sampled;
SELECT count(*) AS leaves_of_dropped_tables FROM capacity_leaf_inserts s
 WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = s.leaf);
SELECT count(*) AS engine_rows_of_dropped_tables FROM capacity_counter
 WHERE name = 'engine_rows_inserted' AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = (labels->>'relid')::oid);

-- clean up: leave the other tests' catalog as it was
DELETE FROM capacity_sample WHERE sampled_at >= '2031-01-01';
DELETE FROM capacity_sample_hourly WHERE hour >= '2031-01-01';
DELETE FROM capacity_sample_daily WHERE day >= '2031-01-01';
DELETE FROM capacity_latest_sample WHERE sampled_at >= '2031-01-01';

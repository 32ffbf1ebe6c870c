-- Changing the granularity of a managed table: periods already made stay,
-- the next ones follow the new grid from where the last one ends, so the
-- partitions stay contiguous (no gap, no overlap) in both directions, ISO
-- weeks included; rows at the seam land in the seam period; the runway and
-- the default EXPLAIN checks follow.  Every call pins as_of.
SET TimeZone = 'UTC';
SET client_min_messages = warning;
CREATE SCHEMA cp;
SET search_path = cp, public;
CREATE TABLE cp."Metric" (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
-- the level-1 periods, and whether each starts where the one before ends
CREATE FUNCTION cp.periods() RETURNS TABLE(partition_name regclass, range_from timestamptz,
                                           range_to timestamptz, seam text) LANGUAGE sql AS $$
    SELECT partition_name, range_from, range_to,
           CASE WHEN lag(range_to) OVER w IS NULL THEN 'first'
                WHEN lag(range_to) OVER w = range_from THEN 'contiguous'
                WHEN lag(range_to) OVER w < range_from THEN 'GAP'
                ELSE 'OVERLAP' END
      FROM capacity_partitions
     WHERE table_name = 'cp."Metric"'::regclass AND level = 1 AND NOT is_default
    WINDOW w AS (ORDER BY range_from)
     ORDER BY range_from
$$;

-- daily, five days from Friday 2026-11-20: the last ends 2026-11-25
SELECT capacity_manage('cp."Metric"', 'ts', 'day', premake => 4);
SELECT action, partition_name, detail FROM capacity_rollover('cp."Metric"', as_of => '2026-11-20 10:00+00');
-- a row after the last daily period waits in the default partition
INSERT INTO cp."Metric" VALUES (1, '2026-11-24 23:59:59.999999+00'), (2, '2026-11-25 00:00+00'),
                               (3, '2026-11-30 23:59:59+00');

-- day -> month in mid-month: the first monthly period is the span from the
-- last daily end to the next month boundary, named after its month
SELECT capacity_manage('cp."Metric"', 'ts', 'month', premake => 1);
SELECT granularity, premake FROM capacity_policies WHERE table_name = 'cp."Metric"'::regclass;
SELECT action, partition_name, detail FROM capacity_rollover('cp."Metric"', as_of => '2026-11-21 00:00+00');
SELECT * FROM cp.periods();
SELECT id, tableoid::regclass AS partition FROM cp."Metric" ORDER BY id;
-- the runway reaches the end of the monthly periods
SELECT range_to FROM capacity_partition_horizon() WHERE table_name = 'cp."Metric"'::regclass;
-- the default checks follow the policy: named by month; at the seam the
-- period is the span, one partition
SELECT name, params FROM capacity_explain_check WHERE name LIKE 'cp."Metric"%' ORDER BY name;
SELECT capacity_explain_expand('{@period_start@,@period_end@,@mid_period@,@mid_next_period@}',
                               'cp."Metric"', as_of => '2026-11-27 00:00+00') AS seam_period,
       capacity_explain_expand('{@period_start@,@period_end@}',
                               'cp."Metric"', as_of => '2026-12-10 00:00+00') AS next_period;
-- (run in a transaction rolled back: a run records explain_failures samples)
BEGIN;
SELECT name, partitions_scanned, max_partitions, passed
  FROM capacity_explain_run(as_of => '2026-11-27 00:00+00') WHERE name LIKE 'cp."Metric"%';
SELECT name, partitions_scanned, max_partitions, passed
  FROM capacity_explain_run(as_of => '2026-12-10 00:00+00') WHERE name LIKE 'cp."Metric"%';
ROLLBACK;

-- month -> week: the months end on Friday 2027-01-01, inside ISO week 53
-- of 2026; that week's span is p2026w53, then whole ISO weeks
SELECT capacity_manage('cp."Metric"', 'ts', 'week', premake => 2);
SELECT action, partition_name, detail FROM capacity_rollover('cp."Metric"', as_of => '2026-12-29 00:00+00');
SELECT * FROM cp.periods() WHERE range_from >= '2026-12-01';
INSERT INTO cp."Metric" VALUES (4, '2026-12-31 23:59:59+00'), (5, '2027-01-01 00:00+00'), (6, '2027-01-04 00:00+00');
SELECT id, tableoid::regclass AS partition FROM cp."Metric" WHERE id >= 4 ORDER BY id;

-- week -> day: weeks end on a Monday, days follow from there
SELECT capacity_manage('cp."Metric"', 'ts', 'day', premake => 2);
SELECT action, partition_name, detail FROM capacity_rollover('cp."Metric"', as_of => '2027-01-17 12:00+00');

-- day -> week in mid-week (Tuesday): the span to Monday, then weeks
SELECT capacity_manage('cp."Metric"', 'ts', 'week', premake => 1);
SELECT action, partition_name, detail FROM capacity_rollover('cp."Metric"', as_of => '2027-01-19 12:00+00');
SELECT * FROM cp.periods() WHERE range_from >= '2027-01-01';
SELECT count(*) AS gaps_or_overlaps FROM cp.periods() WHERE seam IN ('GAP', 'OVERLAP');
SELECT count(*) AS rows_kept FROM cp."Metric";
SELECT count(*) AS in_default FROM cp."Metric_default";

-- the hash shape still cannot change once periods exist
DO $$
BEGIN
    PERFORM capacity_manage('cp."Metric"', 'ts', 'week', 'id', 4);
EXCEPTION WHEN object_not_in_prerequisite_state THEN
    RAISE WARNING '%', SQLERRM;
END $$;
DROP SCHEMA cp CASCADE;

-- Item 6: boundaries are the same under any session TimeZone; ISO weeks
-- start Monday 00:00 UTC; year-end weeks are right.
CREATE SCHEMA tz;
SET search_path = tz, public;
CREATE TABLE w_utc (t timestamptz NOT NULL) PARTITION BY RANGE (t);
CREATE TABLE w_akl (t timestamptz NOT NULL) PARTITION BY RANGE (t);
CREATE TABLE m_ts (t timestamp NOT NULL) PARTITION BY RANGE (t);
CREATE TABLE d_date (t date NOT NULL) PARTITION BY RANGE (t);
SELECT capacity_manage('w_utc', 't', 'week', premake => 3);
SELECT capacity_manage('w_akl', 't', 'week', premake => 3);
SELECT capacity_manage('m_ts', 't', 'month', premake => 2);
SELECT capacity_manage('d_date', 't', 'day', premake => 2);
SET TimeZone = 'UTC';
SELECT partition_name FROM capacity_rollover('w_utc', as_of => '2026-12-30 12:00+00');
SET TimeZone = 'Pacific/Auckland';
-- the same instant, seen from Auckland (already 2026-12-31 01:00 there)
SELECT partition_name FROM capacity_rollover('w_akl', as_of => '2026-12-30 12:00+00');
SELECT partition_name FROM capacity_rollover('m_ts', as_of => '2026-12-31 23:30+00');
SELECT partition_name FROM capacity_rollover('d_date', as_of => '2026-12-31 23:30+00');
SET TimeZone = 'UTC';
-- identical bounds, Monday midnight UTC
SELECT u.range_from, u.range_to, to_char(u.range_from, 'Dy HH24:MI') AS starts,
       u.range_from = a.range_from AND u.range_to = a.range_to AS same_in_auckland
  FROM capacity_partitions u
  JOIN capacity_partitions a ON a.table_name = 'w_akl'::regclass
   AND a.range_from = u.range_from AND NOT a.is_default
 WHERE u.table_name = 'w_utc'::regclass AND NOT u.is_default ORDER BY 1;
SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c
 WHERE c.oid IN ('m_ts_p202612'::regclass, 'd_date_p20270101'::regclass) ORDER BY 1;
-- a row at 23:30 UTC on Sunday lands in that week, not the next
INSERT INTO w_akl VALUES ('2027-01-03 23:30+00'), ('2027-01-04 00:00+00');
SELECT tableoid::regclass, t FROM w_akl ORDER BY t;
-- week 53 and week 1 that starts in December
SELECT partition_name, detail FROM capacity_rollover('w_utc', as_of => '2020-12-30 00:00+00')
 WHERE partition_name LIKE '%2020w53' OR partition_name LIKE '%2021w01';
SELECT partition_name, detail FROM capacity_rollover('w_utc', as_of => '2024-12-28 00:00+00')
 WHERE partition_name LIKE '%2025w01';

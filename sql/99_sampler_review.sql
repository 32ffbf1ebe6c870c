-- Third hostile review: what the sampler reads, and what a push may not do.
SET TimeZone = 'UTC';
\set VERBOSITY terse
-- A partitioned table whose default partition is a foreign table: counting
-- it would run postgres_fdw with the extension owner's user mapping (a
-- server pointing back at this cluster made its owner superuser). Only a
-- default partition that is a plain table is counted; here the server
-- cannot even be reached, so a count would fail the indicator.
CREATE EXTENSION postgres_fdw;
CREATE SERVER review_nowhere FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '/nonexistent', port '1', dbname 'x');
CREATE USER MAPPING FOR CURRENT_USER SERVER review_nowhere;
CREATE TABLE review_fd (at timestamptz NOT NULL, n int) PARTITION BY RANGE (at);
CREATE FOREIGN TABLE review_fd_default PARTITION OF review_fd DEFAULT SERVER review_nowhere;
CREATE TABLE review_plain (at timestamptz NOT NULL, n int) PARTITION BY RANGE (at);
CREATE TABLE review_plain_default PARTITION OF review_plain DEFAULT;
INSERT INTO review_plain VALUES ('2026-12-01', 1), ('2026-12-02', 2);
SELECT capacity_sample_now('2026-12-03 00:00+00') > 0 AS sampled;
SELECT last_error_at IS DISTINCT FROM '2026-12-03 00:00+00' AS default_rows_ok
  FROM capacity_indicator_run WHERE indicator = 'default_partition_rows';
SELECT labels->>'table' AS table, value FROM capacity_sample
 WHERE indicator = 'default_partition_rows' AND labels->>'table' LIKE '%review%' ORDER BY 1;
DROP TABLE review_fd, review_plain;
DROP USER MAPPING FOR CURRENT_USER SERVER review_nowhere;
DROP SERVER review_nowhere;
DROP EXTENSION postgres_fdw;
-- A push dated outside the years 1000..9998 is refused (one at year 51000
-- stayed the series' newest value for good); so is one into an hour whose
-- raw samples are gone (imported history older than the raw retention):
-- re-rolling that hour from raw samples replaced its rollup by that one value.
SELECT capacity_register_push('review_push', 'n', 'review');
SELECT * FROM public.try($$SELECT capacity_record('review_push', 1, '{}', '51000-01-01 00:00+00')$$);
SELECT * FROM public.try($$SELECT capacity_record('review_push', 1, '{}', '0500-01-01 00:00+00')$$);
SELECT capacity_import_samples('review_push', '{}',
         ARRAY['2026-10-01 10:00+00', '2026-10-01 10:10+00', '2026-10-01 10:20+00']::timestamptz[],
         ARRAY[1000, 1001, 1002]::float8[], '2026-12-03 00:00+00') AS imported;
SELECT count(*) AS raw_left FROM capacity_sample WHERE indicator = 'review_push';
SELECT * FROM public.try($$SELECT capacity_record('review_push', 5, '{}', '2026-10-01 10:30+00')$$);
SELECT hour, min, max, count FROM capacity_sample_hourly WHERE indicator = 'review_push';
SELECT count(*) AS recorded FROM capacity_sample WHERE indicator = 'review_push';
-- a value of an hour that still has its raw samples is recorded as before
SELECT capacity_record('review_push', 7, '{}', '2026-12-02 10:30+00');
SELECT count(*) AS recorded FROM capacity_sample WHERE indicator = 'review_push';

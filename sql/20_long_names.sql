-- Issue 13 section 3 (case 06): generated names fit PostgreSQL's limits for
-- long and multibyte table names: at most 62 bytes (so the row type's array
-- type "_name" fits too), cut on character boundaries, unique.  Section 5:
-- a huge premake in one transaction stays within the lock table.
SET TimeZone = 'UTC';
CREATE SCHEMA names;
SET search_path = names, public;

-- a 58-byte name, 121 daily periods in one call (stopped after some with
-- "could not form array type name" when names took 63 bytes)
CREATE TABLE customer_interaction_events_archive_partitioned_by_day_tbl (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT capacity_manage('customer_interaction_events_archive_partitioned_by_day_tbl', 'at', 'day', premake => 120);
SELECT action, count(*) FROM capacity_rollover('customer_interaction_events_archive_partitioned_by_day_tbl', as_of => '2026-06-01 00:00+00')
 GROUP BY 1 ORDER BY 1;

-- two 63-byte names that differ in their last byte, hash leaves with 4-digit suffixes
CREATE TABLE customer_interaction_events_archive_partitioned_by_time_table_a (id bigint, org int NOT NULL, at timestamptz NOT NULL, PRIMARY KEY (id, at, org)) PARTITION BY RANGE (at);
CREATE TABLE customer_interaction_events_archive_partitioned_by_time_table_b (id bigint, org int NOT NULL, at timestamptz NOT NULL, PRIMARY KEY (id, at, org)) PARTITION BY RANGE (at);
SELECT capacity_manage('customer_interaction_events_archive_partitioned_by_time_table_a', 'at', 'day', 'org', 128, premake => 1);
SELECT capacity_manage('customer_interaction_events_archive_partitioned_by_time_table_b', 'at', 'day', 'org', 4, premake => 1);
SELECT action, count(*) FROM capacity_rollover('customer_interaction_events_archive_partitioned_by_time_table_a', as_of => '2026-06-01 00:00+00') GROUP BY 1 ORDER BY 1;
SELECT action, count(*) FROM capacity_rollover('customer_interaction_events_archive_partitioned_by_time_table_b', as_of => '2026-06-01 00:00+00') GROUP BY 1 ORDER BY 1;

-- a multibyte name: 20 two-byte and 3 four-byte characters
CREATE TABLE "événement_événement_éé_😀😀😀_log" (at timestamptz NOT NULL, org text NOT NULL) PARTITION BY RANGE (at);
SELECT capacity_manage('"événement_événement_éé_😀😀😀_log"', 'at', 'week', 'org', 16, premake => 1);
SELECT action, partition_name, octet_length(partition_name) AS bytes
  FROM capacity_rollover('"événement_événement_éé_😀😀😀_log"', as_of => '2026-06-01 00:00+00')
 WHERE partition_name NOT LIKE '%h1_' ORDER BY 2;

-- every generated name: at most 62 bytes, unique, with its array type named "_" || name
SELECT count(*) AS partitions, count(DISTINCT partition_name) AS distinct_names,
       max(octet_length(c.relname)) AS longest_bytes,
       count(*) FILTER (WHERE a.typname <> '_' || c.relname) AS array_names_not_underscore_name
  FROM capacity_partitions p
  JOIN pg_class c ON c.oid = p.partition_name
  JOIN pg_type t ON t.oid = c.reltype
  JOIN pg_type a ON a.oid = t.typarray
 WHERE c.relnamespace = 'names'::regnamespace;
SELECT table_name, level, count(*) FROM capacity_partitions
 WHERE table_name::oid IN (SELECT oid FROM pg_class WHERE relnamespace = 'names'::regnamespace)
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT partition_name, octet_length(partition_name::text) AS bytes FROM capacity_partitions
 WHERE table_name = '"événement_événement_éé_😀😀😀_log"'::regclass AND level = 2 AND hash_remainder = 15
 ORDER BY range_from;
-- the SQL face names leaves as the rollover does
SELECT capacity_partition_name('customer_interaction_events_archive_partitioned_by_time_table_a', 'day', '2026-06-01', 7, 128)
       IN (SELECT relname FROM pg_class WHERE relnamespace = 'names'::regnamespace) AS leaf_name_matches;
-- rows reach the right leaves
INSERT INTO customer_interaction_events_archive_partitioned_by_time_table_a SELECT g, g, '2026-06-01 12:00+00' FROM generate_series(1, 500) g;
INSERT INTO "événement_événement_éé_😀😀😀_log" SELECT '2026-06-03 12:00+00', 'org' || g FROM generate_series(1, 100) g;
SELECT (SELECT count(*) FROM customer_interaction_events_archive_partitioned_by_time_table_a) AS a,
       (SELECT count(*) FROM "événement_événement_éé_😀😀😀_log") AS u;
DROP TABLE customer_interaction_events_archive_partitioned_by_day_tbl,
           customer_interaction_events_archive_partitioned_by_time_table_a,
           customer_interaction_events_archive_partitioned_by_time_table_b,
           "événement_événement_éé_😀😀😀_log";

-- section 5: 600 days ahead with 8 leaves each at the default
-- max_locks_per_transaction: no "out of shared memory"; what does not fit
-- in one transaction is left for the next call and said so
SHOW max_locks_per_transaction;
CREATE TABLE huge (id bigint, org int NOT NULL, at timestamptz NOT NULL, PRIMARY KEY (id, at, org)) PARTITION BY RANGE (at);
SELECT capacity_manage('huge', 'at', 'day', 'org', 8, premake => 600);
SELECT action, count(*) > 0 AS some, count(*) < 600 AS not_all
  FROM capacity_rollover('huge', as_of => '2026-06-01 00:00+00') GROUP BY 1 ORDER BY 1;
SELECT detail ~ '^\d+ more periods from \d{4}-\d\d-\d\d left for the next call' AS says_what_is_left
  FROM capacity_rollover_log WHERE table_name = 'names.huge' AND action = 'deferred';
DROP TABLE huge;

-- online conversion of live tables with long names (63 bytes, ASCII and
-- multibyte): its renamed table, indexes and default partition fit and never
-- collide (refused with "already exists" before); its NOTICEs carry timings
SET client_min_messages = warning;
CREATE TABLE customer_interaction_events_archive_not_yet_partitioned_tbl_x (id bigint, at timestamptz NOT NULL, PRIMARY KEY (id, at));
INSERT INTO customer_interaction_events_archive_not_yet_partitioned_tbl_x SELECT g, '2026-05-20'::timestamptz + g * interval '1 minute' FROM generate_series(1, 100) g;
CALL capacity_convert('customer_interaction_events_archive_not_yet_partitioned_tbl_x', 'at', 'week', premake => 1, as_of => '2026-06-01 00:00+00');
SELECT partition_name, octet_length(partition_name::text) AS bytes, range_from, range_to FROM capacity_partitions
 WHERE table_name = 'customer_interaction_events_archive_not_yet_partitioned_tbl_x'::regclass AND level = 1 ORDER BY range_from NULLS FIRST;
CREATE TABLE "受注明細履歴受注明細履歴受注明細履歴受注明細履" (id bigint, at timestamptz NOT NULL, PRIMARY KEY (id, at));
SELECT octet_length('受注明細履歴受注明細履歴受注明細履歴受注明細履') AS bytes;
INSERT INTO "受注明細履歴受注明細履歴受注明細履歴受注明細履" SELECT g, '2026-05-20'::timestamptz + g * interval '1 minute' FROM generate_series(1, 100) g;
CALL capacity_convert('"受注明細履歴受注明細履歴受注明細履歴受注明細履"', 'at', 'week', premake => 1, as_of => '2026-06-01 00:00+00');
SELECT c.relname, octet_length(c.relname) AS bytes, c.relkind FROM pg_class c
 WHERE c.relnamespace = 'names'::regnamespace AND c.relname LIKE '受注%' ORDER BY 1;
SELECT count(*) AS rows_after FROM "受注明細履歴受注明細履歴受注明細履歴受注明細履";
CALL capacity_convert_backfill('"受注明細履歴受注明細履歴受注明細履歴受注明細履"');
SELECT count(*) AS rows_after_backfill, count(DISTINCT tableoid) AS partitions_holding_rows FROM "受注明細履歴受注明細履歴受注明細履歴受注明細履";
RESET client_min_messages;
SELECT octet_length(capacity_derived_name(repeat('受', 21), 'historical')) AS derived_bytes,
       capacity_derived_name(repeat('x', 63) || 'a', 'conv') <> capacity_derived_name(repeat('x', 63) || 'b', 'conv') AS distinct_for_distinct_bases;
SET client_min_messages = warning;
DROP SCHEMA names CASCADE;
RESET client_min_messages;
SELECT count(*) AS conversions_left FROM capacity_conversion;

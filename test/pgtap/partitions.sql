-- pgTAP: the partition lifecycle's contract, as an application's CI would
-- assert it.  Runs in one transaction and rolls back.
BEGIN;
SELECT plan(24);
SET LOCAL TimeZone = 'UTC';

CREATE TABLE tap_event ("orgId" int NOT NULL, "createdAt" timestamptz NOT NULL, note text)
  PARTITION BY RANGE ("createdAt");
CREATE TABLE tap_day (d date NOT NULL, v int) PARTITION BY RANGE (d);

-- the interface exists with the contract's signatures
SELECT has_function('capacity_manage', ARRAY['regclass', 'name', 'text', 'name', 'integer', 'integer', 'interval', 'text', 'boolean']);
SELECT has_function('capacity_rollover', ARRAY['regclass', 'timestamp with time zone', 'boolean']);
SELECT has_function('capacity_set_hash_partitions', ARRAY['regclass', 'integer']::name[] || ARRAY['timestamp with time zone']::name[]);
SELECT has_view('capacity_policies');
SELECT has_view('capacity_partitions');
SELECT has_view('capacity_rollover_log');
SELECT columns_are('capacity_partitions', ARRAY['table_name', 'partition_name', 'parent_name', 'level',
       'range_from', 'range_to', 'hash_modulus', 'hash_remainder', 'is_default', 'est_rows', 'total_bytes']);

-- manage + rollover
SELECT lives_ok($$SELECT capacity_manage('tap_event', 'createdAt', 'week', 'orgId', 4, premake => 2)$$, 'manage a weekly table');
SELECT results_eq($$SELECT action, count(*)::int FROM capacity_rollover('tap_event', as_of => '2026-11-22') GROUP BY 1$$,
                  $$VALUES ('created', 4)$$, 'default + current week + 2 ahead');
SELECT is((SELECT count(*)::int FROM capacity_partitions WHERE table_name = 'tap_event'::regclass AND level = 2), 12,
          'three periods of four hash leaves');
SELECT is_empty($$SELECT * FROM capacity_rollover('tap_event', as_of => '2026-11-22')$$, 'second rollover does nothing');

-- calling manage again updates the policy
SELECT lives_ok($$SELECT capacity_manage('tap_event', 'createdAt', 'week', 'orgId', 4, premake => 5, retention => '8 weeks')$$,
                'policy update');
SELECT is((SELECT premake FROM capacity_policies WHERE table_name = 'tap_event'::regclass), 5, 'premake updated');
SELECT is((SELECT count(*)::int FROM capacity_rollover('tap_event', as_of => '2026-11-22') WHERE action = 'created'), 3,
          'a larger premake creates the extra weeks');

-- the procedure form inside a transaction block does the same work (atomically)
SELECT lives_ok($$SELECT capacity_manage('tap_day', 'd', 'day', premake => 2)$$, 'manage a date table');
CALL capacity_rollover_proc('tap_day', '2026-11-22');
SELECT is((SELECT count(*)::int FROM capacity_partitions WHERE table_name = 'tap_day'::regclass AND NOT is_default), 3,
          'procedure created the day partitions');
SELECT is((SELECT count(*)::int FROM capacity_rollover_log WHERE table_name = 'public.tap_day' AND action = 'created'), 4,
          'procedure actions are logged');

-- the tree function works on any range-partitioned table
SELECT is((SELECT range_to - range_from FROM capacity_partition_tree('tap_day') WHERE NOT is_default LIMIT 1),
          interval '1 day', 'capacity_partition_tree decodes bounds');

-- privileges: PUBLIC may not mutate; pg_monitor may read the views
SELECT ok(NOT has_function_privilege('public', 'capacity_rollover(regclass, timestamptz, boolean)', 'EXECUTE'),
          'PUBLIC cannot run capacity_rollover');
SELECT ok(NOT has_function_privilege('public', 'capacity_manage(regclass, name, text, name, integer, integer, interval, text, boolean)', 'EXECUTE'),
          'PUBLIC cannot run capacity_manage');
SELECT ok(has_table_privilege('pg_monitor', 'capacity_partitions', 'SELECT'), 'pg_monitor reads capacity_partitions');
SELECT ok(NOT has_table_privilege('public', 'capacity_policy', 'INSERT'), 'nobody writes the policy table directly');

-- a recorded error is specific: SQLSTATE and message naming the table
SELECT throws_ok($$SELECT capacity_manage('tap_event', 'createdAt', 'month')$$, '55000', NULL,
                 'granularity cannot change once periods exist');
SELECT throws_ok($$SELECT * FROM capacity_rollover('tap_event', as_of => '-infinity')$$, '22008', NULL,
                 'infinite as_of is refused');

SELECT * FROM finish();
ROLLBACK;

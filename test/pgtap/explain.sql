-- pgTAP: how an application's own CI asserts partition pruning with
-- matter_capacity.  Runs in one transaction and rolls back.
BEGIN;
SELECT plan(7);
SET LOCAL TimeZone = 'UTC';

CREATE TABLE tap_events ("orgId" text NOT NULL, "createdAt" timestamptz NOT NULL, payload jsonb)
  PARTITION BY RANGE ("createdAt");
SELECT capacity_manage('tap_events', 'createdAt', 'week', 'orgId', 8, premake => 2);
SELECT count(*) FROM capacity_rollover('tap_events', as_of => '2026-11-22');

-- the query the application runs (as a prepared statement)
SELECT cmp_ok(
    capacity_explain_partitions(
        $$SELECT * FROM tap_events WHERE "orgId" = $1 AND "createdAt" >= $2 AND "createdAt" < $3$$,
        ARRAY['acme', '2026-11-23', '2026-11-30']),
    '<=', 1, 'tenant timeline reads one leaf, custom and generic plan');
SELECT cmp_ok(
    capacity_explain_partitions(
        $$SELECT * FROM tap_events WHERE "orgId" = $1 AND "createdAt" >= $2 AND "createdAt" < $3$$,
        ARRAY['acme', '2026-11-20', '2026-11-27']),
    '<=', 2, 'a window across a week boundary reads at most two leaves');
SELECT cmp_ok(
    capacity_explain_partitions($$SELECT count(*) FROM tap_events
        WHERE "createdAt" >= '2026-11-23' AND "createdAt" < '2026-11-30'$$),
    '<=', 8, 'a week of all tenants reads that week''s leaves only');
-- a regression is visible: wrapping the column defeats pruning
SELECT cmp_ok(
    capacity_explain_partitions($$SELECT * FROM tap_events
        WHERE "orgId" = 'acme' AND date_trunc('week', "createdAt") = '2026-11-23'$$),
    '>', 1, 'date_trunc on the partition key scans every period (the check catches it)');
-- the default checks capacity_manage registered all pass
SELECT is_empty(
    $$SELECT name FROM capacity_explain_run('2026-11-22 12:00+00')
       WHERE name LIKE 'public.tap_events:%' AND NOT passed$$,
    'default checks of tap_events pass');
SELECT throws_ok($$SELECT capacity_explain_partitions('UPDATE tap_events SET payload = NULL')$$,
                 '42809', NULL, 'DML is refused, never run');
SELECT is((SELECT count(*)::int FROM capacity_explain_check WHERE table_name = 'tap_events'::regclass), 3,
          'capacity_manage registered three default checks');
SELECT * FROM finish();
ROLLBACK;

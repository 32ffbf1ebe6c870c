-- Item 1: the three demo policies.  A rollover creates the current period
-- and premake periods ahead; a second rollover creates nothing.
CREATE SCHEMA demo;
SET search_path = demo, public;
SET TimeZone = 'UTC';
CREATE TABLE "Event" (
    id bigint GENERATED ALWAYS AS IDENTITY,
    "orgId" text NOT NULL,
    "createdAt" timestamptz NOT NULL DEFAULT now(),
    payload jsonb,
    PRIMARY KEY (id, "orgId", "createdAt")
) PARTITION BY RANGE ("createdAt");
CREATE INDEX ON "Event" ("orgId", "createdAt");
CREATE TABLE "AuditEntry" (
    id bigint GENERATED ALWAYS AS IDENTITY,
    "orgId" text NOT NULL,
    "createdAt" timestamptz NOT NULL DEFAULT now(),
    action text NOT NULL
) PARTITION BY RANGE ("createdAt");
CREATE TABLE "IdempotencyRecord" (
    key text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    response jsonb
) PARTITION BY RANGE (created_at);

SELECT capacity_manage('"Event"', 'createdAt', 'week', 'orgId', 16,
                       premake => 4, retention => '52 weeks', retention_action => 'detach');
SELECT capacity_manage('"AuditEntry"', 'createdAt', 'month', 'orgId', 16, premake => 3);
SELECT capacity_manage('"IdempotencyRecord"', 'created_at', 'day',
                       premake => 7, retention => '7 days', retention_action => 'drop');
SELECT table_name, time_column, granularity, hash_column, hash_partitions, premake,
       retention, retention_action, default_partition
  FROM capacity_policies ORDER BY table_name::text;

SELECT * FROM capacity_rollover(as_of => '2026-11-22 10:00+00') ORDER BY table_name::text, partition_name;

-- current period plus premake ahead, each with its leaves
SELECT table_name, count(*) FILTER (WHERE level = 1 AND NOT is_default) AS periods,
       count(*) FILTER (WHERE level = 2) AS leaves,
       count(*) FILTER (WHERE is_default) AS defaults,
       min(range_from) FILTER (WHERE level = 1) AS first_from,
       max(range_to) FILTER (WHERE level = 1) AS last_to
  FROM capacity_partitions GROUP BY 1 ORDER BY table_name::text;

-- leaves are named after their period, two-digit bucket numbers
SELECT partition_name, parent_name, hash_modulus, hash_remainder
  FROM capacity_partitions
 WHERE table_name = '"Event"'::regclass AND level = 2
   AND parent_name = '"Event_p2026w47"'::regclass AND hash_remainder IN (0, 15)
 ORDER BY hash_remainder;

-- idempotent: the second run has nothing to do
SELECT count(*) AS actions FROM capacity_rollover(as_of => '2026-11-22 10:00+00');

-- every action is logged with its as_of
SELECT table_name, action, count(*) FROM capacity_rollover_log
 WHERE as_of = '2026-11-22 10:00+00' GROUP BY 1, 2 ORDER BY 1, 2;

-- a quiet table does not fall behind: one week later one more week appears
SELECT * FROM capacity_rollover('"Event"', as_of => '2026-11-29 10:00+00');

-- AuditEntry has no retention: even years later nothing is detached
SELECT action, count(*) FROM capacity_rollover('"AuditEntry"', as_of => '2029-01-15 00:00+00')
 GROUP BY 1 ORDER BY 1;
SELECT count(*) AS audit_periods FROM capacity_partitions
 WHERE table_name = '"AuditEntry"'::regclass AND level = 1 AND NOT is_default;

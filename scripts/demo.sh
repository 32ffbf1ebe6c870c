#!/usr/bin/env bash
# scripts/demo.sh — install everything, build, start a throwaway cluster and
# show matter_capacity doing its main job on demo data.
#
#   ./scripts/demo.sh        install, build, start, load, show
#   ./scripts/demo.sh stop   stop the demo cluster
#
# The cluster keeps running afterwards so you can explore it in psql; the
# last lines printed say how to connect.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
PORT=${MC_DEMO_PORT:-55433}

if [ "${1:-}" = stop ]; then cluster_stop demo; echo "demo cluster stopped"; exit 0; fi

install_dependencies
build_and_install
mkdir -p "$MC_RUN"
cluster_start demo "$PORT"
cluster_env demo "$PORT"
psql -X -q -d postgres -c "CREATE DATABASE matter_demo"
export PGDATABASE=matter_demo

echo "== creating the hot tables and a few hundred orgs of synthetic rows"
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION matter_capacity;
CREATE TABLE "Event" (
    id bigint GENERATED ALWAYS AS IDENTITY,
    "orgId" text NOT NULL,
    "createdAt" timestamptz NOT NULL DEFAULT now(),
    type text NOT NULL,
    payload jsonb,
    PRIMARY KEY (id, "orgId", "createdAt")
) PARTITION BY RANGE ("createdAt");
CREATE INDEX ON "Event" ("orgId", "createdAt");
CREATE TABLE "AuditEntry" (
    id bigint GENERATED ALWAYS AS IDENTITY,
    "orgId" text NOT NULL,
    "createdAt" timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    action text NOT NULL
) PARTITION BY RANGE ("createdAt");
CREATE TABLE "IdempotencyRecord" (
    key text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    response jsonb
) PARTITION BY RANGE (created_at);

-- the three demo policies
SELECT capacity_manage('"Event"', 'createdAt', 'week', 'orgId', 16,
                       premake => 4, retention => '52 weeks', retention_action => 'detach');
SELECT capacity_manage('"AuditEntry"', 'createdAt', 'month', 'orgId', 16, premake => 3);
SELECT capacity_manage('"IdempotencyRecord"', 'created_at', 'day',
                       premake => 7, retention => '7 days', retention_action => 'drop');

-- the first rollover makes the default partitions and the periods ahead
SELECT count(*) AS first_rollover_actions FROM capacity_rollover();

-- three weeks of history arrive late (an import): no period exists for it,
-- so it lands in the default partitions, safely
INSERT INTO "Event" ("orgId", "createdAt", type)
SELECT 'org' || (g % 300), now() - (g % 30240) * interval '1 minute', 'page_view'
  FROM generate_series(1, 60000) g;
INSERT INTO "AuditEntry" ("orgId", "createdAt", actor, action)
SELECT 'org' || (g % 300), date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
       + (g % 600) * interval '1 minute', 'user' || g % 40, 'login'
  FROM generate_series(1, 6000) g;
INSERT INTO "IdempotencyRecord" (key, created_at)
SELECT 'req-' || g, now() - (g % 4320) * interval '1 minute' FROM generate_series(1, 9000) g;
ANALYZE;
SQL

show() { echo; echo "== $1"; shift; psql -X -P pager=off -c "$*"; }
show "rows waiting in the default partitions before the rollover" \
  "SELECT 'Event' AS t, count(*) FROM \"Event_default\" UNION ALL SELECT 'IdempotencyRecord', count(*) FROM \"IdempotencyRecord_default\""
show "SELECT * FROM capacity_rollover()  -- makes the past periods and moves the rows out" \
  "SELECT table_name, action, count(*) AS n, min(partition_name) AS first, max(partition_name) AS last, sum(substring(detail from '^[0-9]+')::bigint) FILTER (WHERE action = 'moved_rows') AS rows_moved FROM capacity_rollover() GROUP BY 1, 2 ORDER BY table_name::text, action"
psql -X -q -c "ANALYZE"
show "capacity_policies" "SELECT table_name, granularity, hash_column, hash_partitions AS hash, premake, retention, retention_action FROM capacity_policies"
show "capacity_partitions (periods; each Event/AuditEntry period has 16 hash leaves)" \
  "SELECT table_name, partition_name, range_from, range_to, est_rows, pg_size_pretty(total_bytes) AS size FROM capacity_partitions WHERE level = 1 ORDER BY table_name::text, is_default, range_from"
show "rows left in default partitions (kept empty by the rescue)" \
  "SELECT table_name, sum(est_rows) AS est_rows, (SELECT count(*) FROM \"Event_default\") + (SELECT count(*) FROM \"AuditEntry_default\") + (SELECT count(*) FROM \"IdempotencyRecord_default\") AS exact_total FROM capacity_partitions WHERE is_default GROUP BY 1"
show "a tenant + one-week query reads one leaf" \
  "EXPLAIN (COSTS OFF) SELECT * FROM \"Event\" WHERE \"orgId\" = 'org42' AND \"createdAt\" >= date_trunc('week', now()) AND \"createdAt\" < date_trunc('week', now()) + interval '7 days'"
show "a second rollover has nothing to do" "SELECT count(*) AS actions FROM capacity_rollover()"
show "capacity_rollover_log (last actions)" "SELECT logged_at::time(0), table_name, action, partition_name, round(duration_ms::numeric, 1) AS ms FROM capacity_rollover_log ORDER BY id DESC LIMIT 8"

psql -X -q -c "SELECT capacity_sample_now()" >/dev/null
show "SELECT * FROM capacity_stage()  -- where we stand on the six-stage ladder" \
  "SELECT current_stage, current_name, recommended_stage, decision, firing, evidence->'insufficient_data' AS insufficient_data, runbook FROM capacity_stage()"
show "capacity_latest (table indicators)" \
  "SELECT indicator, labels->>'table' AS \"table\", round(value::numeric, 1) AS value FROM capacity_latest WHERE labels ? 'table' ORDER BY 2, 1"
show "SELECT * FROM capacity_report()  -- the weekly review" "SELECT * FROM capacity_report()"

cat <<EOF2

The demo cluster is still running. Explore it with:
    psql -h $PGHOST -p $PORT -U postgres matter_demo
Stop it with:
    ./scripts/demo.sh stop
EOF2

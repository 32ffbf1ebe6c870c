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

echo
echo "== 30 days of history (synthetic, rolled up as the sampler would have): CPU peaks"
echo "   creeping up, webhook deliveries compounding 2 %/day, read QPS flat and noisy"
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
INSERT INTO capacity_sample_hourly (indicator, labels, hour, min, max, avg, last, count)
SELECT s.indicator, '{}', h, v * 0.95, v * 1.05, v, v, 60
  FROM (VALUES ('cpu_utilization'), ('webhook_deliveries_per_day'), ('read_qps')) s(indicator),
       generate_series(date_bin('1 day', now(), '2000-01-01') - interval '30 days',
                        date_bin('1 day', now(), '2000-01-01') - interval '1 hour', interval '1 hour') h,
       LATERAL (SELECT extract(epoch FROM now() - h) / 86400 AS d,
                       extract(hour FROM h AT TIME ZONE 'UTC') AS hr) x,
       LATERAL (SELECT CASE s.indicator
                  WHEN 'cpu_utilization' THEN (38 - 0.25 * x.d + 2 * cos(floor(x.d) * 3.7)) * (0.7 + 0.3 * sin(pi() * x.hr / 24))
                  WHEN 'webhook_deliveries_per_day' THEN 450000 * 1.02 ^ (-x.d) * (1 + 0.04 * sin(floor(x.d) * 5.1))
                  ELSE 220 + 40 * sin(floor(x.d) * 7.3) END AS v) y
ON CONFLICT DO NOTHING;
SELECT capacity_roll_up_days(now() - interval '31 days', now());
SQL
show "SELECT * FROM capacity_forecast()  -- when each trigger would fire" \
  "SELECT stage, trigger_name, labels->>'table' AS \"table\", status, round(current_value::numeric, 1) AS now, threshold, method, round(trend_per_day::numeric, 2) AS per_day, eta::date, days_left, eta_earliest::date AS earliest, eta_latest::date AS latest FROM capacity_forecast() WHERE status <> 'insufficient data' ORDER BY eta NULLS LAST"
show "capacity_stage() with the forecasts: a transition due within 6 months means plan" \
  "SELECT current_stage, recommended_stage, recommended_name, decision, firing, runbook FROM capacity_stage()"
show "SELECT * FROM capacity_report()  -- the weekly review" "SELECT * FROM capacity_report()"
"$MC_ROOT/scripts/report.sh" matter_demo >"$MC_RUN/demo_report.html"
echo; echo "== the review as HTML (capacity_report_html(), docs/report.md): $MC_RUN/demo_report.html"

cat <<EOF2

The demo cluster is still running. Explore it with:
    psql -h $PGHOST -p $PORT -U postgres matter_demo
Stop it with:
    ./scripts/demo.sh stop
EOF2

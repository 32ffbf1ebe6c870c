#!/usr/bin/env bash
# bench/explain_checks.sh — 50 registered checks over the demo tables with
# two years of partitions (~2,900 leaves): one capacity_explain_run(), and
# capacity_explain_partitions() against the baseline of running
# EXPLAIN (FORMAT JSON) and counting the scanned relations in SQL.
# Medians of RUNS in one session.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
RUNS=${1:-7}
PORT=${MC_BENCH_PORT:-55448}
install_dependencies
build_and_install
mkdir -p "$MC_RUN"
cluster_start explain_bench "$PORT" "max_locks_per_transaction = 1024"
cluster_env explain_bench "$PORT"
trap 'cluster_stop explain_bench' EXIT
export PGDATABASE=postgres
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

q <<'SQL'
CREATE EXTENSION matter_capacity;
CREATE TABLE "Event" ("orgId" text NOT NULL, "createdAt" timestamptz NOT NULL, payload jsonb) PARTITION BY RANGE ("createdAt");
CREATE TABLE "AuditEntry" ("orgId" text NOT NULL, "createdAt" timestamptz NOT NULL, action text) PARTITION BY RANGE ("createdAt");
CREATE TABLE "IdempotencyRecord" (key text NOT NULL, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
SELECT capacity_manage('"Event"', 'createdAt', 'week', 'orgId', 16, premake => 108);
SELECT capacity_manage('"AuditEntry"', 'createdAt', 'month', 'orgId', 16, premake => 27);
SELECT capacity_manage('"IdempotencyRecord"', 'created_at', 'day', premake => 737);
SELECT count(*) FROM capacity_rollover(as_of => '2024-11-22');
-- 50 checks: the 7 defaults and 43 of the application's own
SELECT capacity_explain_register('app ' || g,
       $$SELECT * FROM "Event" WHERE "orgId" = $1 AND "createdAt" >= $2 AND "createdAt" < $3$$, 1,
       ARRAY['org' || g, (timestamptz '2025-01-06' + g * interval '7 days')::text,
             (timestamptz '2025-01-13' + g * interval '7 days')::text])
  FROM generate_series(1, 43) g;
SQL
leaves=$(q -c "SELECT count(*) FROM pg_class WHERE relispartition AND relkind = 'r'")
checks=$(q -c "SELECT count(*) FROM capacity_explain_check")
timed() {  # timed SQL: median ms of RUNS executions after one warm-up, one session
    local one="DO \$\$DECLARE t0 timestamptz := clock_timestamp(); BEGIN PERFORM $1; RAISE NOTICE 'ms=%', round(extract(epoch FROM clock_timestamp() - t0) * 1000, 3); END \$\$;"
    for _ in $(seq $((RUNS + 1))); do echo "$one"; done | q 2>&1 | sed -n 's/.*ms=//p' | tail -n +2 | median
}
run_ms=$(timed "(SELECT count(*) FROM capacity_explain_run('2026-11-22'))")
ours=$(timed "capacity_explain_partitions(\$q\$SELECT * FROM \"Event\" WHERE \"orgId\" = 'acme' AND \"createdAt\" >= '2026-11-23' AND \"createdAt\" < '2026-11-30'\$q\$)")
q -c "CREATE FUNCTION json_count(q text) RETURNS int LANGUAGE plpgsql AS \$f\$
DECLARE plan json;
BEGIN
  EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO plan;
  RETURN (WITH RECURSIVE n(node) AS (SELECT plan->0->'Plan'
            UNION ALL SELECT c FROM n, json_array_elements(n.node->'Plans') c)
          SELECT count(DISTINCT node->>'Relation Name') FROM n WHERE node->>'Relation Name' IS NOT NULL);
END \$f\$"
theirs=$(timed "json_count(\$q\$SELECT * FROM \"Event\" WHERE \"orgId\" = 'acme' AND \"createdAt\" >= '2026-11-23' AND \"createdAt\" < '2026-11-30'\$q\$)")
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(q -c 'SHOW server_version'), $(date -u +%Y-%m-%d)"
echo "leaves: $leaves; checks: $checks"
echo "capacity_explain_run(), $checks checks: $run_ms ms (median of $RUNS; target 1000 ms)"
echo "one tenant + week query: capacity_explain_partitions $ours ms, EXPLAIN (FORMAT JSON) counted in SQL $theirs ms"
awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "ratio EXPLAIN JSON / capacity_explain_partitions: %.2fx\n", b / a }'

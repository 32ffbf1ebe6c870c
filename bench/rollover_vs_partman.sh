#!/usr/bin/env bash
# bench/rollover_vs_partman.sh — a rollover with nothing to do, ours vs
# pg_partman 4.7's run_maintenance(), on the demo layout with two years of
# history (about 104 weeks x 16 + 24 months x 16 + 730 days of leaves on each
# side), and the time to create a year of weekly x 16 partitions ahead.
#
# Baseline: pg_partman. Each hash child of Event and AuditEntry is a
# pg_partman set (hash first, then time — pg_partman 4.7 cannot put hash
# leaves under time periods), IdempotencyRecord is one daily set.
# Prints medians of RUNS runs and the ratio.  Usage: bench/rollover_vs_partman.sh [RUNS]
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
RUNS=${1:-7}
PORT=${MC_BENCH_PORT:-55434}
install_dependencies
build_and_install
mkdir -p "$MC_RUN"
# The library preloaded, as docs/operations.md installs it (the worker needs
# it); the worker's own rounds are pushed out of the measurement.
PRELOAD=("shared_preload_libraries = 'pg_cron,matter_capacity'" "matter_capacity.sample_interval = 86400"
         "matter_capacity.rollover_interval = 86400" "matter_capacity.explain_interval = 86400")
cluster_start bench "$PORT" "max_locks_per_transaction = 1024" "${PRELOAD[@]}"
cluster_env bench "$PORT"
[ -n "${MC_BENCH_KEEP:-}" ] || trap 'cluster_stop bench' EXIT
export PGDATABASE=postgres
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

echo "building two years of partitions for matter_capacity ..."
q <<'SQL'
CREATE EXTENSION matter_capacity;
CREATE TABLE "Event" ("orgId" text NOT NULL, "createdAt" timestamptz NOT NULL, payload jsonb)
  PARTITION BY RANGE ("createdAt");
CREATE TABLE "AuditEntry" ("orgId" text NOT NULL, "createdAt" timestamptz NOT NULL, action text)
  PARTITION BY RANGE ("createdAt");
CREATE TABLE "IdempotencyRecord" (key text NOT NULL, created_at timestamptz NOT NULL)
  PARTITION BY RANGE (created_at);
-- start two years back with a premake long enough to reach today + premake
SELECT capacity_manage('"Event"', 'createdAt', 'week', 'orgId', 16, premake => 108);
SELECT capacity_manage('"AuditEntry"', 'createdAt', 'month', 'orgId', 16, premake => 27);
SELECT capacity_manage('"IdempotencyRecord"', 'created_at', 'day', premake => 737);
SELECT count(*) FROM capacity_rollover(as_of => now() - interval '104 weeks');
SELECT capacity_manage('"Event"', 'createdAt', 'week', 'orgId', 16, premake => 4);
SELECT capacity_manage('"AuditEntry"', 'createdAt', 'month', 'orgId', 16, premake => 3);
SELECT capacity_manage('"IdempotencyRecord"', 'created_at', 'day', premake => 7);
SELECT count(*) FROM capacity_rollover();
SQL
ours_leaves=$(q -c "SELECT count(*) FROM capacity_partitions c WHERE NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = c.partition_name)")

echo "building the same for pg_partman ..."
q <<'SQL'
CREATE SCHEMA partman;
CREATE EXTENSION pg_partman SCHEMA partman;
CREATE SCHEMA pm;
CREATE TABLE pm."Event" ("orgId" text NOT NULL, "createdAt" timestamptz NOT NULL, payload jsonb)
  PARTITION BY HASH ("orgId");
CREATE TABLE pm."AuditEntry" ("orgId" text NOT NULL, "createdAt" timestamptz NOT NULL, action text)
  PARTITION BY HASH ("orgId");
CREATE TABLE pm."IdempotencyRecord" (key text NOT NULL, created_at timestamptz NOT NULL)
  PARTITION BY RANGE (created_at);
SQL
for i in $(seq 0 15); do
    h=$(printf '%02d' "$i")
    q >/dev/null <<SQL
CREATE TABLE pm."Event_h$h" PARTITION OF pm."Event" FOR VALUES WITH (MODULUS 16, REMAINDER $i) PARTITION BY RANGE ("createdAt");
SELECT partman.create_parent('pm.Event_h$h', 'createdAt', 'native', 'weekly', p_premake := 4,
       p_start_partition := (now() - interval '104 weeks')::text);
CREATE TABLE pm."AuditEntry_h$h" PARTITION OF pm."AuditEntry" FOR VALUES WITH (MODULUS 16, REMAINDER $i) PARTITION BY RANGE ("createdAt");
SELECT partman.create_parent('pm.AuditEntry_h$h', 'createdAt', 'native', 'monthly', p_premake := 3,
       p_start_partition := (now() - interval '24 months')::text);
SQL
done
q >/dev/null -c "SELECT partman.create_parent('pm.IdempotencyRecord', 'created_at', 'native', 'daily', p_premake := 7, p_start_partition := (now() - interval '730 days')::text)"
q >/dev/null -c "SELECT partman.run_maintenance(p_analyze := false)"
pm_leaves=$(q -c "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'pm' AND c.relkind = 'r'")

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
time_sql() {  # prints milliseconds of one statement, measured by the server
    q -c "DO \$\$DECLARE t0 timestamptz := clock_timestamp(); BEGIN PERFORM $1; RAISE NOTICE 'ms=%', round(extract(epoch FROM clock_timestamp() - t0) * 1000, 2); END \$\$" 2>&1 | sed -n 's/.*ms=//p'
}
ours=$(for _ in $(seq "$RUNS"); do time_sql "(SELECT count(*) FROM capacity_rollover())"; done | median)
theirs=$(for _ in $(seq "$RUNS"); do time_sql "partman.run_maintenance(p_analyze := false)"; done | median)
# the same without preloading: each fresh session first loads the library
# (and libpq, which it links for the loopback connection)
sed -i "s/^shared_preload_libraries = 'pg_cron,matter_capacity'/shared_preload_libraries = 'pg_cron'/" "$(cluster_dir bench)/data/postgresql.conf"
as_server_user "$PGBIN/pg_ctl" -D "$(cluster_dir bench)/data" -w restart -l "$(cluster_dir bench)/server.log" >/dev/null
ours_cold=$(for _ in $(seq "$RUNS"); do time_sql "(SELECT count(*) FROM capacity_rollover())"; done | median)

# a year of weekly x 16 partitions ahead, on a fresh table
q >/dev/null <<'SQL'
CREATE TABLE year_ahead ("orgId" text NOT NULL, "createdAt" timestamptz NOT NULL) PARTITION BY RANGE ("createdAt");
SELECT capacity_manage('year_ahead', 'createdAt', 'week', 'orgId', 16, premake => 52, default_partition => false);
SQL
year_ms=$(time_sql "(SELECT count(*) FROM capacity_rollover('year_ahead'))")

echo
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(psql -X -At -c 'SHOW server_version'), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%d)"
echo "leaves: matter_capacity $ours_leaves, pg_partman $pm_leaves"
echo "rollover with nothing to do (median of $RUNS):"
echo "  matter_capacity capacity_rollover()   $ours ms (library preloaded)"
echo "  pg_partman run_maintenance()          $theirs ms"
awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "  ratio pg_partman / matter_capacity:   %.1fx\n", b / a }'
echo "  matter_capacity, library not preloaded: $ours_cold ms (ratio $(awk -v a="$ours_cold" -v b="$theirs" 'BEGIN { printf "%.1f", b / a }')x)"
echo "create a year ahead (53 weeks x 16 leaves, one call): $year_ms ms"

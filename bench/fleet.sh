#!/usr/bin/env bash
# bench/fleet.sh — capacity_fleet with 1, 4 and 8 members (local clusters),
# all members polled concurrently (one statement each, waited for together
# on one latch wait) against one-by-one (capacity_fleet_poll(name) for each
# member in turn: the same connect + statement, never overlapping).
# Baseline: one-by-one.  Prints the median of RUNS for each and the ratio.
# Local members answer in a few milliseconds (mostly backend start-up and
# SCRAM-free trust auth), so the ratio here is a floor: with members across
# a network the round trips overlap too.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
RUNS=${1:-9}
BASE=${MC_BENCH_PORT:-55480}
install_dependencies
build_and_install
mkdir -p "$MC_RUN"
HUB=$(cluster_dir fleet_bench_hub)
cleanup() { for i in $(seq 1 8); do cluster_stop "fleet_bench_m$i"; done; cluster_stop fleet_bench_hub; }
trap cleanup EXIT
cluster_start fleet_bench_hub "$BASE" "shared_buffers = 16MB"
for i in $(seq 1 8); do cluster_start "fleet_bench_m$i" $((BASE + i)) "shared_buffers = 16MB"; done
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$HUB" -p "$BASE" -U postgres -d postgres "$@"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
q -c "CREATE EXTENSION matter_capacity" -c "CREATE EXTENSION postgres_fdw" >/dev/null
for i in $(seq 1 8); do
    q -c "CREATE SERVER m$i FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '$(cluster_dir fleet_bench_m$i)', port '$((BASE + i))', dbname 'postgres')" \
      -c "CREATE USER MAPPING FOR postgres SERVER m$i OPTIONS (user 'postgres')" >/dev/null
done
# ms for one statement, measured by the server, in one session (RUNS + a warm-up)
time_sql() {
    local one="DO \$\$DECLARE t0 timestamptz := clock_timestamp(); BEGIN PERFORM $1; RAISE NOTICE 'ms=%', round(extract(epoch FROM clock_timestamp() - t0) * 1000, 2); END \$\$;"
    for _ in $(seq $((RUNS + 1))); do echo "$one"; done | q 2>&1 | sed -n 's/.*ms=//p' | tail -n +2 | median
}
echo "| members | concurrent (capacity_fleet) | one-by-one | ratio |"
echo "|---|---|---|---|"
for n in 1 4 8; do
    q -c "TRUNCATE capacity_fleet_member" >/dev/null
    for i in $(seq 1 "$n"); do q -c "SELECT capacity_fleet_add('m$i', 'replica', 'm$i')" >/dev/null; done
    [ "$(q -c "SELECT count(*) FILTER (WHERE reachable) FROM capacity_fleet")" = "$n" ] || { echo "members unreachable" >&2; exit 1; }
    conc=$(time_sql "(SELECT count(*) FROM capacity_fleet)")
    seq_=$(time_sql "(SELECT sum((SELECT count(*) FROM capacity_fleet_poll(m.name))) FROM capacity_fleet_member m)")
    echo "| $n | $conc ms | $seq_ ms | $(awk -v a="$seq_" -v b="$conc" 'BEGIN { printf "%.2f×", a / b }') |"
done

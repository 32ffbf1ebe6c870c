#!/usr/bin/env bash
# bench/hook_overhead.sh — what the executor hooks cost the application.
# pgbench select-only (-S) and simple-update (-N) against the same cluster
# restarted with: plain PostgreSQL, matter_capacity preloaded (hooks on,
# worker idle), pg_stat_statements preloaded.  Configurations alternate
# round by round so drift hits all alike; medians of ROUNDS, TPS ratios
# against plain.  Usage: bench/hook_overhead.sh [ROUNDS] [SECONDS]
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
ROUNDS=${1:-3}
SECS=${2:-10}
CLIENTS=${MC_BENCH_CLIENTS:-2}
MODES=${MC_BENCH_MODES:-"S N"}
PORT=${MC_BENCH_PORT:-55446}
install_dependencies
build_and_install
mkdir -p "$MC_RUN"
cluster_start hooks "$PORT" "shared_buffers = 256MB"
cluster_env hooks "$PORT"
trap 'cluster_stop hooks' EXIT
DATA=$(cluster_dir hooks)/data
"$PGBIN/pgbench" -q -i -s 10 postgres >/dev/null 2>&1

configure() {
    local libs=$1
    sed -i '/^shared_preload_libraries/d; /^matter_capacity\./d' "$DATA/postgresql.conf"
    echo "shared_preload_libraries = '$libs'" >> "$DATA/postgresql.conf"
    if [ "$libs" = matter_capacity ]; then
        echo "matter_capacity.sample_interval = 86400" >> "$DATA/postgresql.conf"
        echo "matter_capacity.rollover_interval = 0" >> "$DATA/postgresql.conf"
    fi
    as_server_user "$PGBIN/pg_ctl" -D "$DATA" -m fast -w restart >/dev/null
}
tps() { "$PGBIN/pgbench" -n "$1" -c "$CLIENTS" -j "$CLIENTS" -T "$SECS" postgres 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -A results
for r in $(seq "$ROUNDS"); do
    for cfg in plain matter_capacity pg_stat_statements; do
        libs=$cfg; [ "$cfg" = plain ] && libs=""
        configure "$libs"
        for mode in $MODES; do results[$cfg,$mode]+="$(tps -$mode) "; done
    done
    echo "round $r done"
done
echo
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(psql -X -At -c 'SHOW server_version'), $(date -u +%Y-%m-%d); pgbench -c $CLIENTS -j $CLIENTS -T $SECS, scale 10, $ROUNDS rounds"
for mode in $MODES; do
    name=select-only; [ $mode = N ] && name=simple-update
    base=$(echo ${results[plain,$mode]} | tr ' ' '\n' | median)
    for cfg in plain matter_capacity pg_stat_statements; do
        m=$(echo ${results[$cfg,$mode]} | tr ' ' '\n' | median)
        awk -v n="$name" -v c="$cfg" -v m="$m" -v b="$base" 'BEGIN { printf "%-14s %-20s %10.1f tps  %6.3f x plain  (%+.1f%%)\n", n, c, m, m / b, (m / b - 1) * 100 }'
    done
done

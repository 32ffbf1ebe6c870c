#!/usr/bin/env bash
# bench/import_cost.sh — capacity_import_samples(source) of 1,000,000 rows
# (500 series x 2,000 one-minute samples, all within the raw retention)
# into a fresh database, RUNS times (a fresh database each); prints each
# time, the median and a checksum of what was written (raw rows, series,
# hourly rollups, sum of newest values, sum of avg*count, daily count), so
# two builds can be compared on the same machine.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
RUNS=${1:-3}
PORT=${MC_BENCH_PORT:-55446}
install_dependencies
build_and_install
mkdir -p "$MC_RUN"
cluster_start import_bench "$PORT"
cluster_env import_bench "$PORT"
[ -n "${MC_BENCH_KEEP:-}" ] || trap 'cluster_stop import_bench' EXIT
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
: >"$MC_RUN/import_times"
for r in $(seq "$RUNS"); do
    q -d postgres -c "DROP DATABASE IF EXISTS mc_import_$r" -c "CREATE DATABASE mc_import_$r"
    q -d "mc_import_$r" -c "CREATE EXTENSION matter_capacity" \
      -c "CREATE TABLE src AS SELECT 'database_bytes'::text AS indicator, jsonb_build_object('s', s) AS labels,
                 timestamptz '2031-01-01' - m * interval '1 minute' AS sampled_at, (s * 1000 + m)::float8 AS value
            FROM generate_series(1, 500) s, generate_series(1, 2000) m" -c "ANALYZE src"
    q -d "mc_import_$r" -c "DO \$\$DECLARE t0 timestamptz := clock_timestamp(); BEGIN
        PERFORM capacity_import_samples('src'::regclass, '2031-01-01');
        RAISE NOTICE 'ms=%', round(extract(epoch FROM clock_timestamp() - t0) * 1000); END \$\$" 2>&1 \
      | sed -n 's/.*ms=//p' | tee -a "$MC_RUN/import_times"
    sum=$(q -d "mc_import_$r" -c "SELECT count(*), (SELECT count(*) FROM capacity_latest_sample), (SELECT count(*) FROM capacity_sample_hourly),
        (SELECT sum(value) FROM capacity_latest_sample), (SELECT sum(avg * count) FROM capacity_sample_hourly),
        (SELECT sum(count) FROM capacity_sample_daily) FROM capacity_sample")
    q -d postgres -c "DROP DATABASE mc_import_$r"
done
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(q -d postgres -c 'SHOW server_version'), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%d)"
echo "capacity_import_samples() of 1,000,000 rows: $(median <"$MC_RUN/import_times") ms (median of $RUNS)"
echo "written: $sum"

#!/usr/bin/env bash
# bench/sampler_cost.sh — one capacity_sample_now() with 2,000, 10,000,
# 20,000 and 50,000 partitions in the database (100-partition range-partitioned
# tables).  Baselines: the targets of 100 ms at 10,000 and 250 ms at
# 50,000 partitions; the growth from 10,000 to 50,000.  Median of RUNS.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
RUNS=${1:-5}
PORT=${MC_BENCH_PORT:-55445}
install_dependencies
build_and_install
mkdir -p "$MC_RUN"
cluster_start sampler_bench "$PORT" "max_locks_per_transaction = 2048"
cluster_env sampler_bench "$PORT"
[ -n "${MC_BENCH_KEEP:-}" ] || trap 'cluster_stop sampler_bench' EXIT
export PGDATABASE=postgres
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
make_tables() {  # make_tables FROM TO: tables t_FROM..t_TO with 100 daily partitions each
    q -c "DO \$\$
    DECLARE i int; d int;
    BEGIN
      FOR i IN $1..$2 LOOP
        EXECUTE format('CREATE TABLE t_%s (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at)', i);
        FOR d IN 0..99 LOOP
          EXECUTE format('CREATE TABLE t_%s_%s PARTITION OF t_%s FOR VALUES FROM (%L) TO (%L)', i, d, i,
                         timestamptz '2026-01-01' + d * interval '1 day', timestamptz '2026-01-01' + (d + 1) * interval '1 day');
        END LOOP;
      END LOOP;
    END \$\$"
}
# One session, as the worker has: the first call (cold caches) is reported
# apart; the median is over the RUNS calls after it.
time_sample() {
    local one="DO \$\$DECLARE t0 timestamptz := clock_timestamp(); BEGIN PERFORM capacity_sample_now(); RAISE NOTICE 'ms=%', round(extract(epoch FROM clock_timestamp() - t0) * 1000, 2); END \$\$;"
    for _ in $(seq $((RUNS + 1))); do echo "$one"; done | q 2>&1 | sed -n 's/.*ms=//p' >"$MC_RUN/sampler_times"
    tail -n +2 "$MC_RUN/sampler_times" | median
}
q -c "CREATE EXTENSION matter_capacity"
make_tables 1 20
q -c "ANALYZE" >/dev/null
n=$(q -c "SELECT count(*) FROM pg_class WHERE relispartition")
time_sample >/dev/null   # creates the sample table's partitions
ms2k=$(time_sample); cold2k=$(head -n 1 "$MC_RUN/sampler_times")
make_tables 21 100
q -c "ANALYZE" >/dev/null
n2=$(q -c "SELECT count(*) FROM pg_class WHERE relispartition")
ms10k=$(time_sample); cold10k=$(head -n 1 "$MC_RUN/sampler_times")
make_tables 101 200
q -c "ANALYZE" >/dev/null
n20=$(q -c "SELECT count(*) FROM pg_class WHERE relispartition")
ms20k=$(time_sample); cold20k=$(head -n 1 "$MC_RUN/sampler_times")
for k in 2 3 4; do make_tables $((k * 100 + 1)) $((k * 100 + 100)); done
q -c "ANALYZE" >/dev/null
n3=$(q -c "SELECT count(*) FROM pg_class WHERE relispartition")
ms50k=$(time_sample); cold50k=$(head -n 1 "$MC_RUN/sampler_times")
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(q -c 'SHOW server_version'), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%d)"
echo "capacity_sample_now() with $n partitions:  $ms2k ms (median of $RUNS in a warm session; first call $cold2k ms)"
echo "capacity_sample_now() with $n2 partitions: $ms10k ms (median of $RUNS in a warm session; first call $cold10k ms)"
awk -v a="$ms10k" 'BEGIN { printf "target 100 ms at 10,000: %.2fx of the target\n", a / 100 }'
echo "capacity_sample_now() with $n20 partitions: $ms20k ms (median of $RUNS in a warm session; first call $cold20k ms)"
echo "capacity_sample_now() with $n3 partitions: $ms50k ms (median of $RUNS in a warm session; first call $cold50k ms)"
awk -v a="$ms50k" 'BEGIN { printf "target 250 ms at 50,000: %.2fx of the target\n", a / 250 }'
awk -v a="$ms10k" -v b="$ms50k" -v n1="$n2" -v n2="$n3" 'BEGIN { printf "growth 10,000 -> 50,000: %.1f ms more for %d more partitions, %.2f ms per 1,000 (x%.2f for x%.1f partitions)\n", b - a, n2 - n1, (b - a) / (n2 - n1) * 1000, b / a, n2 / n1 }'

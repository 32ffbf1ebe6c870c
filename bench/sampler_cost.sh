#!/usr/bin/env bash
# bench/sampler_cost.sh [RUNS] — one capacity_sample_now() with 2,000,
# 10,000, 20,000 and 50,000 partitions in the database (100-partition
# range-partitioned tables), this build side by side with a baseline build
# in the same run, cluster and session kind (the machine is shared: only
# numbers taken together compare).  The baseline is the library of
# MC_BASELINE (a git ref, default main) built here, under this build's SQL:
# the script says so when the two refs' SQL differ.  Targets: 100 ms at
# 10,000 and 250 ms at 50,000 partitions; the growth from 10,000 to 50,000.
# Median of the RUNS warm calls after the first of each session.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
RUNS=${1:-5}
PORT=${MC_BENCH_PORT:-55445}
BASELINE=${MC_BASELINE:-main}
install_dependencies
build_and_install
mkdir -p "$MC_RUN"
LIBDIR=$("$PGBIN/pg_config" --pkglibdir)
cp matter_capacity.so "$MC_RUN/sampler_this.so"
this_name="$(git rev-parse --abbrev-ref HEAD) ($(git describe --always --dirty))"
base_name="$BASELINE ($(git rev-parse --short "$BASELINE"))"
# the baseline's library, built from a clean export of the ref
base_src="$MC_RUN/sampler_baseline_src"
rm -rf "$base_src" && mkdir -p "$base_src"
git archive "$BASELINE" | tar -x -C "$base_src"
make -s -C "$base_src" PG_CONFIG="$PGBIN/pg_config" >/dev/null
cp "$base_src/matter_capacity.so" "$MC_RUN/sampler_baseline.so"
git diff --quiet "$BASELINE" -- src/sql || echo "note: the SQL of $BASELINE differs from this build's; the baseline library runs under this build's SQL"
# a session loads the library installed when it starts: swap the file
# (install replaces it, so running servers keep the one they mapped)
use_lib() { install -m 755 "$MC_RUN/sampler_$1.so" "$LIBDIR/matter_capacity.so"; }
cluster_start sampler_bench "$PORT" "max_locks_per_transaction = 2048"
cluster_env sampler_bench "$PORT"
[ -n "${MC_BENCH_KEEP:-}" ] || trap 'cluster_stop sampler_bench; use_lib this' EXIT
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
# One session per build and round, as the worker has one: the first call
# (cold caches) is reported apart; the medians are over the RUNS calls
# after it.  Two rounds, baseline first then this build first, so that
# neither always meets the other's samples of the hour (the hourly rollup
# grows with them).  Sets ms_<build>, cold_<build>, load.
one_session() {  # one_session BUILD: appends the warm times to $MC_RUN/times_BUILD
    local one="DO \$\$DECLARE t0 timestamptz := clock_timestamp(); BEGIN PERFORM capacity_sample_now(); RAISE NOTICE 'ms=%', round(extract(epoch FROM clock_timestamp() - t0) * 1000, 2); END \$\$;"
    use_lib "$1"
    for _ in $(seq $((RUNS + 1))); do echo "$one"; done | q 2>&1 | sed -n 's/.*ms=//p' >"$MC_RUN/session_times"
    head -n 1 "$MC_RUN/session_times" >>"$MC_RUN/cold_$1"
    tail -n +2 "$MC_RUN/session_times" >>"$MC_RUN/times_$1"
}
measure() {
    rm -f "$MC_RUN"/times_* "$MC_RUN"/cold_*
    load=$(cut -d' ' -f1 /proc/loadavg)
    one_session baseline; one_session this
    one_session this; one_session baseline
    load="$load-$(cut -d' ' -f1 /proc/loadavg)"
    ms_baseline=$(median <"$MC_RUN/times_baseline"); ms_this=$(median <"$MC_RUN/times_this")
    cold_baseline=$(head -n 1 "$MC_RUN/cold_baseline"); cold_this=$(head -n 1 "$MC_RUN/cold_this")
}
report() {  # report PARTITIONS
    awk -v n="$1" -v b="$ms_baseline" -v t="$ms_this" -v cb="$cold_baseline" -v ct="$cold_this" -v l="$load" \
        'BEGIN { printf "%6d partitions: baseline %7.1f ms, this build %7.1f ms (%.2fx of the baseline; %.1fx faster); first call %.1f / %.1f ms; load %s\n", n, b, t, t / b, b / t, cb, ct, l }'
}
q -c "CREATE EXTENSION matter_capacity"
make_tables 1 20
q -c "ANALYZE" >/dev/null
n=$(q -c "SELECT count(*) FROM pg_class WHERE relispartition")
use_lib this; q -c "SELECT capacity_sample_now()" >/dev/null   # creates the sample table's partitions
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(q -c 'SHOW server_version'), $(date -u '+%Y-%m-%d %H:%M') UTC"
echo "baseline: $base_name; this build: $this_name; median of $((2 * RUNS)) warm calls each (two sessions), load = 1-minute load average before-after"
measure; report "$n"
make_tables 21 100
q -c "ANALYZE" >/dev/null
n2=$(q -c "SELECT count(*) FROM pg_class WHERE relispartition")
measure; report "$n2"; ms10k_b=$ms_baseline; ms10k_t=$ms_this
awk -v a="$ms10k_t" 'BEGIN { printf "target 100 ms at 10,000: this build %.2fx of the target\n", a / 100 }'
make_tables 101 200
q -c "ANALYZE" >/dev/null
n20=$(q -c "SELECT count(*) FROM pg_class WHERE relispartition")
measure; report "$n20"
for k in 2 3 4; do make_tables $((k * 100 + 1)) $((k * 100 + 100)); done
q -c "ANALYZE" >/dev/null
n3=$(q -c "SELECT count(*) FROM pg_class WHERE relispartition")
measure; report "$n3"
awk -v a="$ms_this" 'BEGIN { printf "target 250 ms at 50,000: this build %.2fx of the target\n", a / 250 }'
for b in baseline this; do
    if [ $b = this ]; then a=$ms10k_t; z=$ms_this; else a=$ms10k_b; z=$ms_baseline; fi
    awk -v w="$b" -v a="$a" -v b="$z" -v n1="$n2" -v n2="$n3" 'BEGIN { printf "growth 10,000 -> 50,000 (%s): %.1f ms more for %d more partitions, %.2f ms per 1,000 (x%.2f for x%.1f partitions)\n", w, b - a, n2 - n1, (b - a) / (n2 - n1) * 1000, b / a, n2 / n1 }'
done
use_lib this

#!/usr/bin/env bash
# bench/sampler_cost.sh [RUNS] — one capacity_sample_now() with 2,000,
# 10,000, 20,000 and 50,000 partitions in the database (100-partition
# range-partitioned tables), this build side by side with a baseline build
# in the same run, cluster and session kind (the machine is shared: only
# numbers taken together compare).  The baseline is the library of
# MC_BASELINE (a git ref, default main) built here, under this build's SQL:
# the script says so when the two refs' SQL differ; first it checks that
# both write the same figures over a scripted history.  Targets: 100 ms at
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
# Same figures first: both builds sample the same scripted history, each in
# its own database, and must write the same samples, counters and state
# rows (leaves named, not numbered); a timing of wrong figures means
# nothing.  Autovacuum is off meanwhile, so the statistics are the script's.
fig() {  # fig DB: what the sampler wrote, in a comparable form
    q -d "$1" -c "SELECT 'S', s.indicator, s.labels, s.sampled_at, s.value FROM capacity_sample s WHERE s.indicator LIKE 'table%' ORDER BY 2, 3, 4" \
        -c "SELECT 'C', name, labels, value FROM capacity_counter WHERE name LIKE 'table%' OR name LIKE 'engine%' ORDER BY 2, 3" \
        -c "SELECT 'I', coalesce(leaf::regclass::text, 'gone'), inserted, reset FROM capacity_leaf_inserts ORDER BY 2, 3" \
        -c "SELECT 'D', coalesce(leaf::regclass::text, 'gone'), deleted FROM capacity_leaf_deletes ORDER BY 2, 3"
}
same_figures() {
    local d step=0 x
    q -c "ALTER SYSTEM SET autovacuum = off" -c "SELECT pg_reload_conf()" >/dev/null
    for d in fig_baseline fig_this; do
        q -c "CREATE DATABASE $d"
        q -d $d -c "CREATE EXTENSION matter_capacity" -c "
        CREATE TABLE t1 (id bigint, at timestamptz NOT NULL, body text) PARTITION BY RANGE (at);
        CREATE TABLE t1_a PARTITION OF t1 FOR VALUES FROM ('2026-01-01') TO ('2026-01-02');
        CREATE TABLE t1_b PARTITION OF t1 FOR VALUES FROM ('2026-01-02') TO ('2026-01-03');
        CREATE TABLE t1_c PARTITION OF t1 FOR VALUES FROM ('2026-01-03') TO ('2026-01-04');
        CREATE TABLE t1_d PARTITION OF t1 DEFAULT;
        CREATE INDEX ON t1 (id);
        CREATE TABLE t2 (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at);
        CREATE TABLE t2_a PARTITION OF t2 FOR VALUES FROM ('2026-01-01') TO ('2026-01-02') PARTITION BY HASH (id);
        CREATE TABLE t2_a0 PARTITION OF t2_a FOR VALUES WITH (MODULUS 2, REMAINDER 0);
        CREATE TABLE t2_a1 PARTITION OF t2_a FOR VALUES WITH (MODULUS 2, REMAINDER 1);
        CREATE TABLE t2_b PARTITION OF t2 FOR VALUES FROM ('2026-01-02') TO ('2026-01-03');
        CREATE TABLE t2_d PARTITION OF t2 DEFAULT;
        CREATE TABLE t3 (id int) PARTITION BY LIST (id);
        CREATE TABLE t4 (id int) PARTITION BY LIST (id);
        CREATE TABLE t4_1 PARTITION OF t4 FOR VALUES IN (1)" >/dev/null
    done
    while IFS= read -r line; do
        step=$((step + 1))
        for d in fig_baseline fig_this; do
            IFS=';' read -ra parts <<<"${line#LOCKED }"
            for x in "${parts[@]}"; do q -d $d -c "$x" >/dev/null; done
            # another sampler holding the counting locks: the figures without counting
            if [ "${line#LOCKED }" != "$line" ]; then
                echo "BEGIN; LOCK capacity_leaf_inserts, capacity_leaf_deletes IN SHARE ROW EXCLUSIVE MODE; SELECT pg_sleep(2); COMMIT;" | q -d $d >/dev/null &
            fi
        done
        sleep 0.5   # the statistics of the sessions above are flushed at their exit
        for d in baseline this; do
            use_lib $d
            q -d fig_$d -c "SELECT capacity_sample_now(timestamptz '2026-06-01 00:00+00' + $step * interval '1 minute')" >/dev/null
        done
        wait
    done <<'STEPS'
INSERT INTO t1 SELECT g, '2026-01-01'::timestamptz + (g % 96) * interval '1 hour', repeat('x', 3000) FROM generate_series(1, 2000) g; INSERT INTO t2 SELECT g, '2026-01-01'::timestamptz + (g % 96) * interval '1 hour' FROM generate_series(1, 3000) g
DELETE FROM t1 WHERE id % 7 = 0; DELETE FROM t2 WHERE id % 5 = 0; UPDATE t2 SET id = id WHERE id % 3 = 0
ANALYZE t1; INSERT INTO t4 VALUES (1), (1)
SELECT pg_stat_reset_single_table_counters('t2_a0'::regclass); SELECT pg_stat_reset_single_table_counters('t1_b'::regclass)
INSERT INTO t2 SELECT g, '2026-01-01 05:00' FROM generate_series(1, 500) g; DELETE FROM t2_a0 WHERE id < 100
DROP TABLE t1_c; ALTER TABLE t2 DETACH PARTITION t2_b; INSERT INTO t1 SELECT g, '2026-01-03 05:00', 'y' FROM generate_series(1, 50) g
VACUUM t2; INSERT INTO t2 SELECT g, '2026-01-01 05:00' FROM generate_series(1, 10) g
DELETE FROM t1_d WHERE at >= '2026-01-03' AND at < '2026-01-04'; CREATE TABLE t1_c PARTITION OF t1 FOR VALUES FROM ('2026-01-03') TO ('2026-01-04'); DROP TABLE t2_b; SELECT pg_stat_reset()
INSERT INTO t1 SELECT g, '2026-01-03 05:00', 'z' FROM generate_series(1, 20) g; ANALYZE t2
LOCKED INSERT INTO t1 SELECT g, '2026-01-03 05:00', 'z' FROM generate_series(1, 20) g
SELECT 1
INSERT INTO t1 SELECT g, '2026-01-02 03:00', (SELECT string_agg(md5(g::text || i), '') FROM generate_series(1, 200) i) FROM generate_series(1, 300) g; VACUUM t1
CREATE INDEX ON t1 (at); VACUUM ANALYZE t1
STEPS
    q -c "ALTER SYSTEM RESET autovacuum" -c "SELECT pg_reload_conf()" >/dev/null
    fig fig_baseline >"$MC_RUN/fig_baseline"
    fig fig_this >"$MC_RUN/fig_this"
    if cmp -s "$MC_RUN/fig_baseline" "$MC_RUN/fig_this"; then
        echo "same figures as the baseline: $step scripted samplings, $(wc -l <"$MC_RUN/fig_this") samples, counters and state rows identical"
    else
        echo "DIFFERENT FIGURES from the baseline ($MC_RUN/fig_baseline, $MC_RUN/fig_this):"
        diff "$MC_RUN/fig_baseline" "$MC_RUN/fig_this" | head -20
        exit 1
    fi
}
same_figures
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

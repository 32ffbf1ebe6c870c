#!/usr/bin/env bash
# Latency histograms from the executor hooks, on a server with
# shared_preload_libraries = 'matter_capacity': statements of known
# duration (pg_sleep) give percentiles within 5% of the truth, reads and
# writes are told apart, and without preload the indicators are absent.
# The truth is what the server itself timed for each statement
# (log_min_duration_statement): on a busy machine pg_sleep(0.2) takes
# longer than 200 ms, and the histogram must follow what really happened.
# Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
P=55443
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
q() { psql -X -q -At -h "$(cluster_dir latency)" -p $P -U postgres -d postgres "$@"; }
within() {  # within VALUE TRUE PERCENT
    awk -v v="$1" -v t="$2" -v p="$3" 'BEGIN { d = (v - t) / t; if (d < 0) d = -d; exit !(v != "" && d <= p / 100) }'
}
trap 'cluster_stop latency' EXIT
cluster_start latency $P "shared_preload_libraries = 'matter_capacity'" \
    "matter_capacity.sample_interval = 86400" "matter_capacity.rollover_interval = 0"

q -c "CREATE EXTENSION matter_capacity" -c "CREATE TABLE lat_t (x int)" >/dev/null
q -c "SELECT capacity_sample_now()" >/dev/null          # baseline of the histograms
# 60 reads of 20 ms, 40 reads of 100 ms, 30 writes of 200 ms (each its own statement;
# the first statement of a session also loads catalog caches, a few ms that
# 200 ms keeps well inside the 5 % bound for the slowest write)
{
    for _ in $(seq 60); do echo "SELECT pg_sleep(0.02);"; done
    for _ in $(seq 40); do echo "SELECT pg_sleep(0.1);"; done
    for _ in $(seq 30); do echo "INSERT INTO lat_t SELECT 1 FROM pg_sleep(0.2);"; done
    # nested statements are not counted: one top-level read that runs 50 inserts
    echo "DO \$\$BEGIN FOR i IN 1..50 LOOP INSERT INTO lat_t VALUES (i); END LOOP; END\$\$;"
} | PGOPTIONS="-c log_min_duration_statement=0" q >/dev/null
sleep 1
q -c "SELECT capacity_sample_now()" >/dev/null
get() { q -c "SELECT round(value::numeric, 3) FROM capacity_latest WHERE indicator = '$1'"; }
rp50=$(get read_latency_p50_ms); rp95=$(get read_latency_p95_ms); rp99=$(get read_latency_p99_ms)
wp50=$(get write_latency_p50_ms); wp99=$(get write_latency_p99_ms)
rq=$(get read_qps); wq=$(get write_qps)
echo "# read p50 $rp50 ms, p95 $rp95 ms, p99 $rp99 ms, $rq/s; write p50 $wp50 ms, p99 $wp99 ms, $wq/s"
# nearest-rank percentile P of the durations the server logged for statements matching RE
truth() {
    grep -E "duration: [0-9.]+ ms +statement: $2" "$(cluster_dir latency)/server.log" \
      | sed -E 's/.*duration: ([0-9.]+) ms.*/\1/' | sort -g \
      | awk -v p="$1" '{ v[NR] = $1 } END { if (NR == 0) exit; i = int(p * NR); if (i < p * NR) i++; if (i < 1) i = 1; print v[i] }'
}
tr50=$(truth 0.50 'SELECT pg_sleep'); tr95=$(truth 0.95 'SELECT pg_sleep'); tr99=$(truth 0.99 'SELECT pg_sleep')
tw50=$(truth 0.50 'INSERT INTO lat_t SELECT'); tw99=$(truth 0.99 'INSERT INTO lat_t SELECT')
echo "# as the server timed them: read p50 $tr50 ms, p95 $tr95 ms, p99 $tr99 ms; write p50 $tw50 ms, p99 $tw99 ms"
within "$rp50" "${tr50:-20}" 5; ok $? "read p50 within 5% of the server's timing ($rp50 vs $tr50 ms)"
within "$rp95" "${tr95:-100}" 5; ok $? "read p95 within 5% of the server's timing ($rp95 vs $tr95 ms)"
within "$rp99" "${tr99:-100}" 5; ok $? "read p99 within 5% of the server's timing ($rp99 vs $tr99 ms)"
within "$wp50" "${tw50:-200}" 5; ok $? "write p50 within 5% of the server's timing ($wp50 vs $tw50 ms)"
within "$wp99" "${tw99:-200}" 5; ok $? "write p99 within 5% of the server's timing ($wp99 vs $tw99 ms)"
# 100 reads (+ the first capacity_sample_now) and 30 writes in the interval
n_reads=$(q -c "SELECT round(value * (SELECT extract(epoch FROM max(sampled_at) - min(sampled_at)) FROM capacity_sample WHERE indicator = 'database_bytes'))::int FROM capacity_latest WHERE indicator = 'read_qps'")
awk -v n="$n_reads" 'BEGIN { exit !(n >= 100 && n <= 103) }'; ok $? "read count over the interval matches the statements run ($n_reads of 100-103)"
n_writes=$(q -c "SELECT round(value * (SELECT extract(epoch FROM max(sampled_at) - min(sampled_at)) FROM capacity_sample WHERE indicator = 'database_bytes'))::int FROM capacity_latest WHERE indicator = 'write_qps'")
[ "$n_writes" = 30 ]; ok $? "writes counted: 30 top-level INSERTs, nested ones not counted ($n_writes)"

# track_latency off: nothing is counted
q -c "ALTER SYSTEM SET matter_capacity.track_latency = off" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
q -c "SELECT capacity_sample_now()" >/dev/null
for _ in $(seq 20); do echo "SELECT 1;"; done | q >/dev/null
sleep 1
q -c "SELECT capacity_sample_now()" >/dev/null
[ "$(get read_qps)" = 0.000 ]; ok $? "matter_capacity.track_latency = off stops counting"

# without preload: the indicators are absent, not zero
cluster_stop latency
cluster_start latency $P
q -c "CREATE EXTENSION matter_capacity" >/dev/null
q -c "SELECT capacity_sample_now()" -c "SELECT pg_sleep(0.2)" -c "SELECT capacity_sample_now()" >/dev/null
[ "$(q -c "SELECT count(*) FROM capacity_sample WHERE indicator LIKE '%qps' OR indicator LIKE '%latency%'")" = 0 ]
ok $? "without shared_preload_libraries the rate and latency indicators are absent"

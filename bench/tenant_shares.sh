#!/usr/bin/env bash
# bench/tenant_shares.sh — cost and error of the tenant shares on a big
# table.  ROWS (default 10,000,000) rows of one week in a table
# hash-partitioned 16 ways by tenant; tenants skewed (tenant =
# floor(10000 * u^4): the top tenant writes about 10 %, the top ten about
# 18 %).  Baseline: the exact answer from a full scan (GROUP BY tenant),
# which is what the sampler must not do.  Prints the time of one full scan,
# the time the shares add to capacity_sample_now() (with them minus
# without, median of RUNS), and for SEEDS sample seeds the estimate's error
# against the exact answer next to the standard error it reported.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
ROWS=${ROWS:-10000000}
RUNS=${RUNS:-5}
SEEDS=${SEEDS:-10}
PORT=${MC_BENCH_PORT:-55463}
build_and_install
mkdir -p "$MC_RUN"
cluster_start shares_bench "$PORT" "shared_buffers = 256MB" "max_wal_size = 4GB"
cluster_env shares_bench "$PORT"
trap 'cluster_stop shares_bench' EXIT
export PGDATABASE=postgres
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
AS_OF="2026-11-29 00:00+00"

q >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION matter_capacity;
CREATE TABLE "Event" (id bigint, "orgId" text NOT NULL, "createdAt" timestamptz NOT NULL, payload text)
  PARTITION BY RANGE ("createdAt");
SELECT capacity_manage('"Event"', 'createdAt', 'week', 'orgId', 16, premake => 1);
SELECT count(*) FROM capacity_rollover(as_of => '$AS_OF');
SELECT setseed(0.14);
INSERT INTO "Event"
SELECT g, 'org' || floor(10000 * power(random(), 4))::int,
       '2026-11-23 00:00+00'::timestamptz + (g::float8 / $ROWS) * interval '5 days', repeat('x', 40)
  FROM generate_series(1, $ROWS) g;
VACUUM ANALYZE "Event";
SQL
size=$(q -c "SELECT pg_size_pretty(sum(pg_relation_size(relid))) FROM pg_partition_tree('\"Event\"')")

# the baseline: exact shares from a full scan (median of 3, warm)
exact_sql="WITH c AS (SELECT \"orgId\", count(*)::float8 AS n FROM \"Event\" GROUP BY 1)
SELECT max(n) / sum(n), (SELECT sum(n) FROM (SELECT n FROM c ORDER BY n DESC LIMIT 10) t) / sum(n), count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY n), percentile_cont(0.99) WITHIN GROUP (ORDER BY n) FROM c"
exact=$(q -c "$exact_sql")
scan_ms=$(for _ in 1 2 3; do
    q -c "DO \$\$DECLARE t0 timestamptz := clock_timestamp(); BEGIN PERFORM count(*) FROM ($exact_sql) x;
          RAISE NOTICE 'ms=%', round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1); END \$\$" 2>&1 | sed -n 's/.*ms=//p'
  done | median)
IFS='|' read -r top top10 tenants p50 p99 <<<"$exact"

# what the shares add to one sampling (one warm session each way)
time_sample() {
    local one="DO \$\$DECLARE t0 timestamptz := clock_timestamp(); BEGIN PERFORM capacity_sample_now('$AS_OF'); RAISE NOTICE 'ms=%', round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1); END \$\$;"
    for _ in $(seq $((RUNS + 1))); do echo "$one"; done | q 2>&1 | sed -n 's/.*ms=//p' | tail -n +2 | median
}
q -c "SELECT capacity_sample_now('$AS_OF')" >/dev/null
with_ms=$(time_sample)
q -c "UPDATE capacity_indicator SET enabled = false WHERE name = 'tenant_top_share'" >/dev/null
without_ms=$(time_sample)
q -c "UPDATE capacity_indicator SET enabled = true WHERE name = 'tenant_top_share'" >/dev/null
budget=$(q -c "LOAD 'matter_capacity'" -c "SHOW matter_capacity.tenant_sample_rows")

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(q -c 'SHOW server_version'), $(date -u +%Y-%m-%d), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "table: $ROWS rows, 16 hash leaves, $size; exact: top $(printf %.4f "$top"), top10 $(printf %.4f "$top10"), $tenants tenants, rows per tenant p50 $p50, p99 $p99"
echo "full scan (baseline): $scan_ms ms"
echo "tenant shares in capacity_sample_now(): $with_ms - $without_ms ms (budget $budget rows); ratio to the full scan: $(awk -v a="$with_ms" -v b="$without_ms" -v s="$scan_ms" 'BEGIN { printf "%.4f", (a - b) / s }')"
echo "seed | top (err, reported se) | top10 (err, reported se) | tenants | p50 | p99"
for seed in $(seq 1 "$SEEDS"); do
    q -c "SET matter_capacity.tenant_sample_seed = $seed" -c "SELECT capacity_sample_now('$AS_OF')" >/dev/null
    q -F' ' -c "SELECT max(value) FILTER (WHERE indicator = 'tenant_top_share'), max(value) FILTER (WHERE indicator = 'tenant_top_share_stderr'),
                       max(value) FILTER (WHERE indicator = 'tenant_top10_share'), max(value) FILTER (WHERE indicator = 'tenant_top10_share_stderr'),
                       max(value) FILTER (WHERE indicator = 'tenant_count'), max(value) FILTER (WHERE indicator = 'tenant_rows_p50'),
                       max(value) FILTER (WHERE indicator = 'tenant_rows_p99')
                  FROM capacity_latest WHERE indicator LIKE 'tenant%'" \
    | awk -v s="$seed" -v t="$top" -v t10="$top10" \
        '{ printf "%4d | %.4f (%+.4f, %.4f) | %.4f (%+.4f, %.4f) | %d | %.0f | %.0f\n", s, $1, $1 - t, $2, $3, $3 - t10, $4, $5, $6, $7;
           e1 = $1 - t; e10 = $3 - t10; print e1, $2, e10, $4 > "/dev/stderr" }' 2>>"$MC_RUN/shares_err"
done
awk '{ s1 += $1 * $1; s10 += $3 * $3; r1 += $2; r10 += $4; n++ }
     END { printf "over %d seeds: rms error top %.4f (mean reported se %.4f), top10 %.4f (mean reported se %.4f)\n",
                  n, sqrt(s1 / n), r1 / n, sqrt(s10 / n), r10 / n }' "$MC_RUN/shares_err"
rm -f "$MC_RUN/shares_err"
